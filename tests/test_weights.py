"""--weights: torchvision and timm state_dicts (.pth, .safetensors) and archspec checkpoints, checked against the
spec's plan before anything is built, loaded strictly, and giving the outputs of the model the file came from.

Every file is written here from torchvision's or timm's own model (fresh weights, norms randomized by the
parity helper so that every tensor reaches the output); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shlex
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from conftest import ROOT
from parity import assert_same_outputs, randomize_norms
from safetensors.torch import save_file

import archspec
from archspec.errors import SpecError
from archspec.nn.weights import load_weights
from archspec.plan import load_plan

# TorchScript files are loaded as a user would; torch 2.x warns that TorchScript is deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")
SIZES = [(64, 64)]


def _model(library: str, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if library == "timm":
        model = timm.create_model(name, pretrained=False)
    else:
        model = torchvision.models.get_model(name, weights=None)
    return randomize_norms(model).eval()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """`source(library, name, suffix)` -> (file, model): the model's state_dict written once per module."""
    folder = tmp_path_factory.mktemp("weights")
    made: dict[tuple[str, str, str], tuple[Path, torch.nn.Module]] = {}

    def get(library: str, name: str, suffix: str = ".pth") -> tuple[Path, torch.nn.Module]:
        """The file and a copy of the model it holds (a comparison in train mode changes its running stats)."""
        key = (library, name, suffix)
        if key not in made:
            model = _model(library, name)
            path = folder / f"{library}-{name}{suffix}"
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            if suffix == ".safetensors":
                save_file(state, path)
            else:
                torch.save(state, path)
            made[key] = path, model
        path, model = made[key]
        return path, copy.deepcopy(model)

    return get


def problem(call) -> str:
    with pytest.raises(SpecError) as info:
        call()
    (only,) = info.value.problems
    return str(only)


def assert_same_state(ours: torch.nn.Module, reference: torch.nn.Module, leave_out: tuple[str, ...] = ()) -> None:
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        if key not in leave_out:
            assert torch.equal(value, theirs[key]), key


# --- what loads --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "library,name,suffix",
    [
        ("torchvision", "resnet18", ".pth"),
        ("torchvision", "regnet_y_400mf", ".pth"),
        ("timm", "resnet18d", ".pth"),
        ("timm", "seresnet50", ".safetensors"),
        ("torchvision", "mobilenet_v2", ".safetensors"),
        pytest.param("torchvision", "efficientnet_b0", ".pth", marks=pytest.mark.slow),
        pytest.param("torchvision", "convnext_tiny", ".pth", marks=pytest.mark.slow),
    ],
)
def test_a_library_state_dict_loads_strictly_and_gives_the_libraries_outputs(source, library, name, suffix):
    path, reference = source(library, name, suffix)
    ours = archspec.build(name, weights=path, device="cpu").eval()
    assert_same_state(ours, reference)
    assert_same_outputs(ours, reference, SIZES)


def test_safetensors_written_by_safetensors_save_file_load(source):
    path, _ = source("timm", "resnet18d", ".safetensors")
    _, loaded = load_weights(load_plan("resnet18d"), path)
    assert (loaded.kind, loaded.tensors, loaded.head_reset) == ("safetensors", 134, None)
    assert str(loaded) == f"loaded 134 tensors from {path} (safetensors)"


def test_build_with_weights_writes_a_checkpoint_that_rebuilds_the_same_model(cli, source, tmp_path):
    path, reference = source("torchvision", "resnet18")
    out = tmp_path / "model.pt"
    result = cli("build", "resnet18", "--device", "cpu", "--weights", path, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"weights: loaded 122 tensors from {path} (state_dict)" in result.stdout.splitlines()
    assert f"archspec: checking {path} against resnet18's plan ..." in result.stderr
    rebuilt = archspec.load_checkpoint(out, device="cpu").eval()
    assert_same_state(rebuilt, reference)
    assert_same_outputs(rebuilt, reference, SIZES)


def test_an_archspec_checkpoint_is_a_weights_file_too(cli, source, tmp_path):
    path, reference = source("torchvision", "resnet18")
    out = tmp_path / "model.pt"
    assert cli("build", "resnet18", "--device", "cpu", "--weights", path, "--out", out).exit_code == 0
    model, loaded = load_weights(load_plan("resnet18"), out)
    assert loaded.kind == "archspec checkpoint"
    assert_same_outputs(model.eval(), reference, SIZES)


def test_a_classifier_of_another_size_stays_fresh_and_everything_else_loads(cli, source):
    path, reference = source("torchvision", "resnet18")
    model, loaded = load_weights(load_plan("resnet18", overrides=["head.num_classes=10"]), path)
    assert loaded.head_reset == "the head (fc) is left freshly initialised: the file has 1000 classes, the spec 10"
    assert loaded.tensors == 120
    assert model.fc.weight.shape == (10, 512)
    assert_same_state(model, reference, leave_out=("fc.weight", "fc.bias"))
    result = cli("build", "resnet18", "--device", "cpu", "--set", "head.num_classes=10", "--weights", path)
    assert result.exit_code == 0, result.output
    assert (
        f"weights: loaded 120 tensors from {path} (state_dict); the head (fc) is left freshly initialised: "
        "the file has 1000 classes, the spec 10"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize(
    "wrap,kind",
    [
        (lambda state: {f"module.{k}": v for k, v in state.items()}, "state_dict, `module.` prefix removed"),
        (lambda state: {"state_dict": state, "epoch": torch.tensor(90)}, "state_dict under `state_dict`"),
        (lambda state: {"model": state, "optimizer": {"lr": 0.1}}, "state_dict under `model`"),
        (
            lambda state: {"state_dict": {f"module.{k}": v for k, v in state.items()}},
            "state_dict under `state_dict`, `module.` prefix removed",
        ),
    ],
    ids=["DataParallel prefix", "nested state_dict", "nested model", "both"],
)
def test_training_script_wrappers_are_unwrapped(source, tmp_path, wrap, kind):
    _, reference = source("torchvision", "resnet18")
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(reference.state_dict()), path)
    model, loaded = load_weights(load_plan("resnet18"), path)
    assert loaded.kind == kind
    assert_same_outputs(model.eval(), reference, SIZES, train_batch=False)


def test_a_file_without_batch_norm_step_counters_loads_as_older_torchvision_files_do(source, tmp_path):
    _, reference = source("torchvision", "resnet18")
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    model, loaded = load_weights(load_plan("resnet18"), path)
    assert (loaded.tensors, loaded.kind) == (102, "state_dict, num_batches_tracked absent (20 set to 0)")
    assert_same_outputs(model.eval(), reference, SIZES, train_batch=False)


def test_the_papers_stride_placement_and_v1_5_load_each_others_files_shapes_cannot_tell(source):
    """Documented limit: ResNet-50 v1 (stride in the 1x1) and v1.5 (in the 3x3) have the same tensors."""
    path, reference = source("torchvision", "resnet50")
    v1 = archspec.build("resnet50_v1", weights=path, device="cpu").eval()
    assert_same_state(v1, reference)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(v1(x), reference(x), atol=1e-3)


# --- what does not load, and the message that says why ------------------------------------------


def test_a_file_of_another_architecture_is_one_located_message(source):
    path, _ = source("torchvision", "resnet18")
    assert problem(lambda: archspec.build("resnet34", weights=path, device="cpu")) == (
        f"{path}: --weights: does not fit resnet34: missing 96 tensors: stage 1, block 3 (layer1.2.*), "
        "stage 2, block 3 (layer2.2.*), stage 2, block 4 (layer2.3.*), stage 3, block 3 (layer3.2.*) and 4 more places"
    )


def test_missing_unexpected_and_wrongly_shaped_tensors_are_grouped_by_place(source):
    path, _ = source("torchvision", "resnet18")
    assert problem(lambda: archspec.build("resnet50", weights=path, device="cpu")) == (
        f"{path}: --weights: does not fit resnet50: missing 198 tensors: stage 1, block 1 "
        "(layer1.0.conv3.weight, layer1.0.bn3.* and 1 more), stage 1, block 2 (layer1.1.conv3.weight, layer1.1.bn3.*), "
        "stage 1, block 3 (layer1.2.*), stage 2, block 1 (layer2.0.conv3.weight, layer2.0.bn3.*) and 12 more places; "
        "wrong shape in 24 tensors: stage 1, block 1 (layer1.0.conv1.weight is 64x64x3x3 in the file, 64x64x1x1 "
        "in the spec), stage 1, block 2 (layer1.1.conv1.weight is 64x64x3x3 in the file, 64x256x1x1 in the spec), "
        "stage 2, block 1 (layer2.0.conv1.weight is 128x64x3x3 in the file, 128x256x1x1 in the spec, and 5 more), "
        "stage 2, block 2 (layer2.1.conv1.weight is 128x128x3x3 in the file, 128x512x1x1 in the spec) "
        "and 5 more places"
    )


def test_the_message_stays_one_short_line_for_any_number_of_odd_keys():
    from archspec.nn.checkpoint import mismatch_message

    plan = load_plan("resnet18")
    shapes = {f"blocks.{i}.conv{j}.weight": (3, 3) for i in range(20_000) for j in range(5)}
    shapes["evil\nkey\x1b[31m"] = (1,)
    message = mismatch_message(shapes, plan)
    assert message is not None and "\n" not in message and "\x1b" not in message
    assert message.startswith("does not fit resnet18: missing all 122 tensors: the stem (conv1.weight, bn1.*), ")
    assert "; unexpected 100001 tensors: blocks.*, 'evil\\nkey\\x1b[31m'" in message
    assert len(message) < 600


def test_nothing_is_built_when_the_file_does_not_fit(source, monkeypatch):
    path, _ = source("torchvision", "resnet18")

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built for a file that does not fit")

    monkeypatch.setattr("archspec.nn.weights.build_from_plan", refuse)
    monkeypatch.setattr("archspec.nn.weights.check_fits", refuse)
    message = problem(lambda: load_weights(load_plan("vgg11"), path))
    assert message.startswith(f"{path}: --weights: does not fit vgg11: missing all 22 tensors: stage 1 (features.0.*)")
    assert "unexpected 122 tensors: conv1.weight, bn1.*, layer1.*, layer2.* and 3 more" in message


def test_the_cli_refuses_another_architecture_in_one_line_and_writes_nothing(cli, source, tmp_path):
    path, _ = source("torchvision", "resnet18")
    out = tmp_path / "model.pt"
    result = cli("build", "resnet50", "--device", "cpu", "--weights", path, "--out", out)
    assert result.exit_code == 1
    (message,) = [line for line in result.stderr.splitlines() if not line.startswith("archspec: ")]
    assert message.startswith(f"{path}: --weights: does not fit resnet50: missing 198 tensors: stage 1, block 1")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_timm_regnet_file_against_an_archspec_regnet_names_the_layout(source):
    path, _ = source("timm", "regnetx_004", ".safetensors")
    message = problem(lambda: archspec.build("regnet_x_400mf", weights=path, device="cpu"))
    assert message.startswith(
        f"{path}: --weights: does not fit regnet_x_400mf: missing all 428 tensors: the stem (stem.0.weight, stem.1.*), "
        "stage 1, block 1 (trunk_output.block1.*), "
    )
    assert "; unexpected 428 tensors: s1.*, s2.*, s3.*, s4.* and 2 more; " in message
    assert message.endswith(
        "; the file uses timm's RegNet names (s1.b1...); archspec's RegNets take torchvision's (trunk_output...)"
    )


def test_a_plain_resnets_file_against_a_resnet_d_names_the_stem(source):
    path, _ = source("torchvision", "resnet18")
    message = problem(lambda: archspec.build("resnet18d", weights=path, device="cpu"))
    assert "missing 28 tensors: the stem (conv1.0.weight, conv1.1.* and 3 more), stage 2, block 1 " in message
    assert "unexpected 16 tensors: the stem (conv1.weight), stage 2, block 1 " in message
    assert message.endswith(
        "; the file's stem is one conv (conv1.weight), the spec's a ResNet-D's deep stem (conv1.0, conv1.3...)"
    )


def test_a_resnet_d_file_against_a_plain_resnet_names_the_stem(source):
    path, _ = source("timm", "resnet18d")
    assert problem(lambda: archspec.build("resnet18", weights=path, device="cpu")).endswith(
        "; the file's stem is a ResNet-D's deep stem (conv1.0, conv1.3...), the spec's one conv: try the -d spec"
    )


def test_a_whole_networks_file_against_a_features_only_spec_says_there_is_no_classifier(source):
    path, _ = source("torchvision", "resnet18")
    message = problem(
        lambda: archspec.build("resnet18", overrides=["head.features=[2, 3]"], weights=path, device="cpu")
    )
    assert message == (
        f"{path}: --weights: does not fit resnet18: unexpected 32 tensors: stage 4, block 1 (layer4.0.*), "
        "stage 4, block 2 (layer4.1.*), fc.*; the spec is features-only (head.features) and ends at its last stage: "
        "it has no classifier to load"
    )


def test_timms_resnetv2_names_get_a_hint(tmp_path):
    path = tmp_path / "resnetv2.pth"
    torch.save({"stem.conv.weight": torch.zeros(64, 3, 7, 7), "stages.0.blocks.0.conv1.weight": torch.zeros(1)}, path)
    assert problem(lambda: archspec.build("resnet50", weights=path, device="cpu")).endswith(
        "; the file uses timm's ResNetV2 names (stem.conv, stages.0.blocks.0...); "
        "archspec's ResNets take the names of torchvision's and timm's ResNets (conv1, layer1.0...)"
    )


def test_timms_vgg_names_get_a_hint(tmp_path):
    path = tmp_path / "vgg11.pth"
    torch.save(
        {
            "features.0.weight": torch.zeros(64, 3, 3, 3),
            "pre_logits.fc1.weight": torch.zeros(1),
            "head.fc.weight": torch.zeros(1),
        },
        path,
    )
    assert problem(lambda: archspec.build("vgg11", weights=path, device="cpu")).endswith(
        "; the file uses timm's VGG names (pre_logits, head.fc); archspec's VGGs take torchvision's (classifier)"
    )


def test_a_file_with_pickled_objects_is_refused_without_running_them(source, tmp_path):
    _, reference = source("torchvision", "resnet18")
    path = tmp_path / "train_state.pth"
    torch.save({"state_dict": reference.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    assert problem(lambda: archspec.build("resnet18", weights=path, device="cpu")) == (
        f"{path}: --weights: not a weights file: it holds pickled Python objects, "
        "and archspec loads tensors and plain data only (weights_only=True)"
    )


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "not a weights file: the file is empty"),
        (b"stages: []\n", "not a weights file: it is a text file (a spec?), not a torch file"),
    ],
)
def test_a_file_that_is_not_weights_is_one_line(tmp_path, content, reason):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    assert problem(lambda: archspec.build("resnet18", weights=path, device="cpu")) == f"{path}: --weights: {reason}"


def test_bytes_that_are_not_safetensors_are_one_line(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00" * 64)
    assert problem(lambda: archspec.build("resnet18", weights=path, device="cpu")).startswith(
        f"{path}: --weights: not a safetensors file ("
    )


# --- the same option on export and bench -------------------------------------------------------------


def test_export_with_weights_writes_the_files_model(cli, source, tmp_path):
    path, reference = source("torchvision", "resnet18")
    out = tmp_path / "resnet18.pt"
    result = cli(
        "export", "resnet18", "--format", "torchscript", "--out", out, "--weights", path, "--size", "64", "--check"
    )
    assert result.exit_code == 0, result.output
    assert f"archspec: loaded 122 tensors from {path} (state_dict)" in result.stderr.splitlines()
    assert "resnet18 as torchscript" in result.stdout and f"weights from {path}" in result.stdout
    assert "checked at batch" in result.stdout
    assert_same_outputs(torch.jit.load(out), reference, SIZES, train_batch=False)


def test_export_refuses_a_file_of_another_architecture_and_writes_nothing(cli, source, tmp_path):
    path, _ = source("torchvision", "resnet18")
    out = tmp_path / "resnet34.onnx"
    result = cli("export", "resnet34", "--format", "onnx", "--out", out, "--weights", path)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"{path}: --weights: does not fit resnet34: missing 96 tensors")
    )
    assert not out.exists()


def test_bench_with_weights_times_the_loaded_model(cli, source):
    path, _ = source("torchvision", "resnet18")
    quick = ["--size", "64", "--batch", "2", "--warmup", "0", "--iters", "1", "--threads", "1"]
    result = cli("bench", "resnet18", "--device", "cpu", "--weights", path, *quick)
    assert result.exit_code == 0, result.output
    assert f"loaded 122 tensors from {path} (state_dict)" in result.stderr
    assert "archspec resnet18" in result.stdout


def test_bench_refuses_a_file_of_another_architecture(cli, source):
    path, _ = source("torchvision", "resnet18")
    result = cli("bench", "resnet34", "--device", "cpu", "--weights", path, "--size", "64", "--iters", "1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"{path}: --weights: does not fit resnet34:")


# --- the documented runs -------------------------------------------------------------------------

# `<!-- weights output: COMMAND -->` blocks in the docs: the files they name, written from the libraries' models.
_DOC_BLOCK = re.compile(r"<!-- weights output: (?P<command>.+?) -->\n```console\n(?P<body>.*?)```", re.S)
_DOC_FILES = {
    "resnet50-11ad3fa6.pth": ("torchvision", "resnet50", ".pth"),
    "resnet18-f37072fd.pth": ("torchvision", "resnet18", ".pth"),
    "regnetx_004.safetensors": ("timm", "regnetx_004", ".safetensors"),
}
# Lines that hold wall-clock times or name the machine, and the home folder the docs show.
_VOLATILE = re.compile(r"^(built in |device: )")
_HOME = "/home/you"


def _documented():
    for name in ("README.md", "docs/cli.md"):
        for match in _DOC_BLOCK.finditer((ROOT / name).read_text()):
            yield pytest.param(match.group("command"), match.group("body"), id=f"{name}: {match.group('command')}")


def _stable(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip() and not _VOLATILE.match(line)]


@pytest.mark.parametrize("command,body", list(_documented()))
def test_documented_weights_runs_print_what_the_docs_show(cli, source, tmp_path, monkeypatch, command, body):
    lines = body.splitlines()
    start = lines.index(f"$ {command}") + 1
    shown = lines[start:]
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = [arg.replace("~", str(home), 1) if arg.startswith("~/") else arg for arg in shlex.split(command)]
    weights = Path(args[args.index("--weights") + 1])
    weights.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source(*_DOC_FILES[weights.name])[0], weights)
    result = cli(*args[1:])
    printed = result.stdout.splitlines() + [
        line for line in result.stderr.splitlines() if not line.startswith("archspec: ")
    ]
    assert _stable([line.replace(str(home), _HOME) for line in printed]) == _stable(shown)


def test_the_docs_show_each_weights_run():
    commands = [param.values[0] for param in _documented()]
    assert any(
        c.startswith("archspec build resnet50 --weights ~/.cache/torch/hub/checkpoints/") and "--out model.pt" in c
        for c in commands
    )
    assert any("head.num_classes=10" in c for c in commands)
    assert any(c.startswith("archspec build regnet_x_400mf --weights regnetx_004.safetensors") for c in commands)


# --- files that torch would read wrongly, slowly or not at all ---------------------------------------


@pytest.fixture(scope="module")
def resnet20_state():
    torch.manual_seed(0)
    return archspec.build("resnet20", device="cpu").state_dict()


def _saved(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "weights.pth", **kwargs) -> Path:
    path = tmp_path / name
    torch.save(state, path, **kwargs)
    return path


def test_a_stride_zero_tensor_is_refused_by_its_storage_before_any_copy(tmp_path):
    # 4 bytes of data standing for 4 GB: refused by shape and storage, never expanded.
    path = _saved(tmp_path, {"fc.weight": torch.zeros(1).expand(2**15, 2**15)})
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: key 'fc.weight' is a 32768x32768 view of 4 bytes (stride 0 or overlapping): "
        "a tensor must hold its own data"
    )


def test_a_stride_zero_tensor_in_a_checkpoint_is_refused_before_its_checksum(tmp_path, resnet20_state):
    from archspec.nn.checkpoint import FORMAT, load_checkpoint

    spec = archspec.load_spec("resnet20").model_dump(mode="json", exclude={"extends"})
    state = dict(resnet20_state) | {"fc.weight": torch.zeros(1).expand(10, 64)}
    payload = {"format": FORMAT, "version": 2, "spec": spec, "state_dict": state, "sha256": "0" * 64}
    path = _saved(tmp_path, payload, "model.pt")
    assert "key 'fc.weight' is a 10x64 view of 4 bytes" in problem(lambda: load_checkpoint(path, device="cpu"))


def test_tensors_that_share_one_storage_many_times_over_are_refused(tmp_path):
    base = torch.zeros(2**18)
    path = _saved(tmp_path, {f"t{i}": base[: 2**18] for i in range(64)})
    assert "its tensors are views that share storage" in problem(
        lambda: archspec.build("resnet20", weights=path, device="cpu")
    )


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"conv1.weight": torch.int64}, "key conv1.weight holds int64 values; weights are floating-point numbers"),
        ({"fc.bias": torch.bool}, "key fc.bias holds bool values; weights are floating-point numbers"),
        ({"bn1.num_batches_tracked": torch.float32}, "key bn1.num_batches_tracked holds float32 values; a batch count"),
    ],
)
def test_integer_and_boolean_tensors_are_not_cast_silently(tmp_path, resnet20_state, change, reason):
    state = {k: v.to(change[k]) if k in change else v for k, v in resnet20_state.items()}
    path = _saved(tmp_path, state)
    assert reason in problem(lambda: archspec.build("resnet20", weights=path, device="cpu"))


def test_non_finite_weights_are_reported_by_count_and_name(tmp_path, resnet20_state):
    state = dict(resnet20_state)
    state["fc.bias"] = torch.full((10,), float("nan"))
    state["conv1.weight"] = state["conv1.weight"].clone()
    state["conv1.weight"][0, 0, 0, 0] = float("inf")
    path = _saved(tmp_path, state)
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: 2 tensors hold NaN or infinite values (conv1.weight, fc.bias): the weights of a "
        "diverged run, or a damaged file"
    )


def test_a_legacy_torch_file_is_refused_before_it_is_read(tmp_path, resnet20_state):
    path = _saved(tmp_path, resnet20_state, _use_new_zipfile_serialization=False)
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: not a weights file: it is in torch's legacy format (before torch 1.6), which cannot be "
        "checked before it is read whole; save it again with a current torch (torch.save)"
    )


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_a_truncated_file_names_no_torch_internals(tmp_path, resnet20_state, cut):
    whole = _saved(tmp_path, resnet20_state, "whole.pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(whole[: int(len(whole) * cut)])
    message = problem(lambda: archspec.build("resnet20", weights=path, device="cpu"))
    assert message.startswith(f"{path}: --weights: not a weights file: ")
    assert not re.search(r"Error|Pytorch|Errno|wrong byte size", message), message


def test_a_damaged_tensor_record_names_no_torch_internals(tmp_path, resnet20_state):
    """A zip archive whose tensor record is shorter than its header says: torch's C++ text stays inside."""
    import zipfile

    whole = _saved(tmp_path, {"fc.bias": torch.zeros(10)}, "whole.pth")
    path = tmp_path / "damaged.pth"
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[:8] if item.filename.endswith("/data/0") else data)
    message = problem(lambda: archspec.build("resnet20", weights=path, device="cpu"))
    assert message.startswith(f"{path}: --weights: not a weights file: ")
    assert not re.search(r"Error|Pytorch|wrong byte size|storage", message), message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
def test_a_fifo_as_weights_is_refused_without_blocking(tmp_path):
    path = tmp_path / "weights.pth"
    os.mkfifo(path)
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: is not a regular file (a device, FIFO or socket); a weights file is a regular file"
    )


def test_a_device_as_weights_is_refused_without_reading_it():
    assert problem(lambda: archspec.build("resnet20", weights="/dev/zero", device="cpu")) == (
        "/dev/zero: --weights: is not a regular file (a device, FIFO or socket); a weights file is a regular file"
    )


def test_a_loop_of_links_is_one_line(tmp_path):
    (tmp_path / "a.pth").symlink_to(tmp_path / "b.pth")
    (tmp_path / "b.pth").symlink_to(tmp_path / "a.pth")
    path = tmp_path / "a.pth"
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: the path is a loop of symbolic links"
    )


def test_a_missing_weights_file_is_refused_before_torch_is_loaded(tmp_path):
    from conftest import run_without_torch

    result = run_without_torch(["build", "resnet20", "--weights", str(tmp_path / "missing.pth")])
    lines = result.stderr.strip().splitlines()
    assert lines[-2:] == [f"{tmp_path / 'missing.pth'}: --weights: no such weights file", "NO_TORCH"]


def test_a_python_file_as_weights_is_called_text_not_pickled_objects(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("import torch\nprint('hello')\n")
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")) == (
        f"{path}: --weights: not a weights file: it is a text file (a spec?), not a torch file"
    )


@pytest.mark.parametrize("weights", [5, 3.0, b"x.pth"])
def test_weights_of_the_wrong_type_are_a_type_error_naming_the_argument(weights):
    with pytest.raises(TypeError, match=r"^weights must be a path \(str or os\.PathLike\)"):
        archspec.build("resnet20", weights=weights, device="cpu")


def test_load_checkpoint_of_none_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match=r"^path must be a path \(str or os\.PathLike\), not NoneType"):
        archspec.load_checkpoint(None)  # type: ignore[arg-type]


def test_a_checkpoint_for_another_input_says_which_set_makes_it_fit(tmp_path):
    """A model trained on digits (1x8x8) loaded into its stock spec: the message names the --set that fits."""
    from archspec.nn.checkpoint import save_checkpoint

    overrides = ["input.channels=1", "input.size=8"]
    model = archspec.build("resnet20", overrides=overrides, device="cpu")
    path = tmp_path / "model.pt"
    save_checkpoint(model, archspec.load_spec("resnet20", overrides=overrides), path)
    assert problem(lambda: archspec.build("resnet20", weights=path, device="cpu")).endswith(
        "; the file's model takes another input: add --set input.channels=1 --set input.size=8"
    )
    fitted = archspec.build("resnet20", overrides=overrides, weights=path, device="cpu")
    assert fitted.conv1.weight.shape == (16, 1, 3, 3)


def test_a_state_dict_for_grey_images_says_which_channels_fit(tmp_path):
    model = torchvision.models.resnet18(weights=None)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    path = tmp_path / "grey.pth"
    torch.save(model.state_dict(), path)
    assert problem(lambda: archspec.build("resnet18", weights=path, device="cpu")).endswith(
        "; the file's model takes another input: add --set input.channels=1"
    )


@pytest.mark.parametrize(
    "weight",
    [(), (10,), (10, 32), (10, 64, 1), (5, 64)],
    ids=["scalar", "vector", "other-inputs", "other-rank", "classes-differ-from-bias"],
)
def test_a_head_of_another_shape_than_another_class_count_is_a_located_refusal(tmp_path, weight):
    # Only a head that is ours for another number of classes (same rank, same inputs, one class count for the
    # weight and the bias) is left fresh; any other head shape is a mismatch, reported in one line.
    state = archspec.build("resnet20", device="cpu").state_dict()
    state["fc.weight"] = torch.zeros(weight)
    state["fc.bias"] = torch.zeros(10)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(SpecError) as caught:
        load_weights(load_plan("resnet20", overrides=["head.num_classes=100"]), path)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}: --weights: ") and "fc.weight" in str(problem)
