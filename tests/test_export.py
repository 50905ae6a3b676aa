"""`archspec export`: ONNX, TorchScript and torch.export files that run outside archspec with PyTorch's outputs."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ROOT, STOCK

import archspec
from archspec.nn.checkpoint import save_checkpoint
from archspec.nn.layers import ResidualBlock
from archspec.tools.export import export_model

# The bar for the exported model against PyTorch.
TOLERANCE = 1e-4
# The tests load TorchScript files as a user would; torch 2.x warns that TorchScript is deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")


def calibrated(name: str, size=None, overrides=()):
    """A model in eval mode whose numbers look like a trained one's, so that 1e-4 tests the export, not rounding.

    Fresh weights in eval mode leave batch norm as the identity, and deep ResNets' outputs grow to
    1e6-1e8 (NaN for resnet1202). With batch-norm statistics from one batch instead, the residual
    stream still grows block by block: PyTorch's own float32 output for resnet152 is then 7e-4 away
    from its float64 output, above the bar. Trained ResNets keep each block's last batch-norm scale
    small (zero-init-residual training starts it at 0); with 0.2, PyTorch's float32 error is about
    1e-6 on every stock spec.
    """
    torch.manual_seed(0)
    model = archspec.build(name, device="cpu", input_size=size, overrides=overrides)
    plan = archspec.load_plan(name, overrides=overrides, input_size=size)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # running statistics = the batch's
        if isinstance(module, ResidualBlock) and module.has_shortcut and module.zero_init:
            last = module.get_submodule(".".join(module.zero_init))
            if isinstance(last, torch.nn.modules.batchnorm._BatchNorm):
                torch.nn.init.constant_(last.weight, 0.2)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, plan.input_channels, *plan.input_size))
    return model.eval(), plan


def exported(tmp_path, name, fmt, size=None, batch=None):
    """Export a calibrated model with the library (the CLI's own check off); return (model, plan, file)."""
    model, plan = calibrated(name, size)
    out = tmp_path / f"{name}.{fmt}"
    export_model(model, plan, fmt, out, batch=batch, check=False)
    return model, plan, out


def export_with_checkpoint(cli, tmp_path, name, fmt, extra=()):
    """Save a calibrated model as a checkpoint and export it through the CLI; return (model, plan, file)."""
    model, plan = calibrated(name)
    checkpoint = tmp_path / f"{name}.ckpt"
    save_checkpoint(model, plan.spec, checkpoint)
    out = tmp_path / f"{name}.{fmt}"
    result = cli("export", name, "--format", fmt, "--out", out, "--weights", checkpoint, *extra)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: {name} as {fmt}")
    return model, plan, out


def onnx_outputs(path, x) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def max_difference(exported, model, x) -> float:
    with torch.no_grad():
        reference = model(x)
    reference = reference if isinstance(reference, list) else [reference]
    assert len(exported) == len(reference)
    return max(float(np.abs(np.asarray(e) - r.numpy()).max()) for e, r in zip(exported, reference, strict=True))


# A representative subset: basic blocks with option A zero-padding (resnet20), and bottleneck blocks behind
# ResNet-D's deep stem and average-pool shortcut (resnet26d). Squeeze-excitation, pre-activation, the VGGs
# (half a gigabyte of weights each) and the RegNets are exported in the slow tier, with every other stock spec.
CI_SUBSET = [
    ("resnet20", None),
    ("resnet26d", 64),
]


@pytest.mark.parametrize("name,size", CI_SUBSET)
def test_onnx_export_passes_the_checker_and_matches_pytorch_in_onnxruntime(tmp_path, name, size):
    model, plan, out = exported(tmp_path, name, "onnx", size)
    onnx.checker.check_model(str(out), full_check=True)
    x = torch.randn(3, plan.input_channels, *plan.input_size)
    assert max_difference(onnx_outputs(out, x), model, x) < TOLERANCE


# regnet_y_128gf's weights (2.4 GiB) exceed what one ONNX file can hold; its refusal is tested below.
@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in STOCK if name != "regnet_y_128gf"])
def test_every_stock_spec_exports_to_onnx_that_matches_pytorch(tmp_path, name):
    model, plan, out = exported(tmp_path, name, "onnx")
    onnx.checker.check_model(str(out), full_check=True)
    x = torch.randn(2, plan.input_channels, *plan.input_size)
    outputs = onnx_outputs(out, x)
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(x.double()).numpy()
        own = float(np.abs(model(x).double().numpy() - exact).max())
    if own < TOLERANCE / 2:
        assert max_difference(outputs, model, x) < TOLERANCE
    else:
        # Deep plain nets with batch norm amplify rounding layer by layer (plain56: PyTorch's own
        # float32 output is 4e-4 to 1.4e-3 from float64): no float32 runtime matches it to 1e-4. The
        # export must then be as accurate as PyTorch is.
        assert float(np.abs(outputs[0] - exact).max()) <= 2 * own


def test_onnx_refuses_weights_over_2_gib_before_building_the_model(cli, tmp_path):
    result = cli("export", "regnet_y_128gf", "--format", "onnx", "--out", tmp_path / "big.onnx")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("--format: the weights take 2.40 GiB; one ONNX file holds at most 2 GiB")
    assert "loading torch" not in result.stderr


def test_the_cli_exports_a_checkpoints_weights_with_a_dynamic_batch_axis(cli, tmp_path):
    model, _, out = export_with_checkpoint(cli, tmp_path, "resnet20", "onnx")
    batch_dim = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    for batch in (1, 5):
        x = torch.randn(batch, 3, 32, 32)
        outputs = onnx_outputs(out, x)
        assert outputs[0].shape == (batch, 10)
        assert max_difference(outputs, model, x) < TOLERANCE


@pytest.mark.slow
def test_onnx_fixed_batch_is_static_and_refuses_other_batches(tmp_path):
    _, _, out = exported(tmp_path, "resnet20", "onnx", batch=4)
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 3, 32, 32]
    assert onnx_outputs(out, torch.randn(4, 3, 32, 32))[0].shape == (4, 10)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        onnx_outputs(out, torch.randn(3, 3, 32, 32))


def test_torchscript_export_loads_with_torch_jit_and_matches(cli, tmp_path):
    model, _, out = export_with_checkpoint(cli, tmp_path, "resnet18", "torchscript", extra=["--size", "64"])
    loaded = torch.jit.load(str(out))
    x = torch.randn(5, 3, 64, 64)  # traced at batch 2: the trace does not fix the batch size
    with torch.no_grad():
        assert max_difference([loaded(x)], model, x) < TOLERANCE


def test_exported_program_loads_with_torch_export_and_has_a_dynamic_batch(tmp_path):
    model, _, out = exported(tmp_path, "resnet26d", "exported-program", size=64)
    program = torch.export.load(str(out))
    for batch in (1, 6):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            assert max_difference([program.module()(x)], model, x) < TOLERANCE


@pytest.mark.slow
def test_exported_program_with_a_fixed_batch_refuses_other_batches(tmp_path):
    _, _, out = exported(tmp_path, "resnet20", "exported-program", batch=2)
    module = torch.export.load(str(out)).module()
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # Recent torch releases fail a guard (AssertionError); older ones raise RuntimeError.
    with pytest.raises((AssertionError, RuntimeError)):
        module(torch.randn(3, 3, 32, 32))


@pytest.mark.slow
def test_features_only_spec_exports_one_named_onnx_output_per_stage(cli, tmp_path):
    out = tmp_path / "backbone.onnx"
    result = cli("export", "resnet20", "--set", "head.features=[1,2,3]", "--format", "onnx", "--out", out)
    assert result.exit_code == 0, result.output
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["features.1", "features.2", "features.3"]
    shapes = [o.shape for o in onnx_outputs(out, torch.randn(2, 3, 32, 32))]
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]


def test_export_reports_the_check_it_made(cli, tmp_path):
    result = cli("export", "resnet20", "--format", "torchscript", "--out", tmp_path / "m.pt", "--report", "json")
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    assert report["input_shape"] == ["batch", 3, 32, 32]
    assert report["checked_batch"] == 3
    assert report["max_abs_difference"] <= 1e-4
    assert report["bytes"] == (tmp_path / "m.pt").stat().st_size


def test_export_refuses_to_overwrite_without_force(cli, tmp_path):
    out = tmp_path / "model.pt"
    out.write_text("keep me")
    result = cli("export", "resnet20", "--format", "torchscript", "--out", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{out}: --out: file exists; pass --force to overwrite it"
    assert out.read_text() == "keep me"
    assert cli("export", "resnet20", "--format", "torchscript", "--out", out, "--force").exit_code == 0
    assert torch.jit.load(str(out))(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_never_writes_over_the_spec_it_reads(cli, write, force):
    text = "extends: resnet20\nhead: {num_classes: 3}\n"
    spec = write("mine.yaml", text)
    result = cli("export", spec, "--format", "torchscript", "--out", spec, *force)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"{spec}: --out: is the spec this command reads; write to another file (--force replaces outputs, not inputs)"
    )
    assert spec.read_text() == text


def test_a_checkpoint_of_another_architecture_is_a_one_line_error(cli, tmp_path):
    checkpoint = tmp_path / "resnet32.ckpt"
    save_checkpoint(archspec.build("resnet32", device="cpu"), archspec.load_spec("resnet32"), checkpoint)
    result = cli("export", "resnet20", "--format", "onnx", "--out", tmp_path / "m.onnx", "--weights", checkpoint)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"{checkpoint}: --weights: does not fit resnet20: unexpected 72 tensors: stage 1, block 4 (layer1.3.*), "
        "stage 1, block 5 (layer1.4.*), "
        "stage 2, block 4 (layer2.3.*), stage 2, block 5 (layer2.4.*) and 2 more places"
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("batch", ["0", "-3", "many", "two", "²"])
def test_a_bad_batch_is_a_usage_error_on_one_line(cli, tmp_path, batch):
    result = cli("export", "resnet20", "--format", "onnx", "--out", tmp_path / "m.onnx", "--batch", batch)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"--batch {batch}: batch: expected 'dynamic' or a batch size from 1 to 2147483647"


def test_an_unknown_format_is_a_usage_error(cli, tmp_path):
    result = cli("export", "resnet20", "--format", "tflite", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert "onnx" in result.stderr and "exported-program" in result.stderr


@pytest.mark.parametrize("args", [["export", "--help"], ["bench", "--help"], ["plot", "--help"]])
def test_help_of_the_new_commands_does_not_import_torch(args):
    probe = (
        f"import sys\nfrom archspec.cli import app\ntry:\n    app({args!r}, standalone_mode=False)\nexcept "
        "SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr[-2000:]
