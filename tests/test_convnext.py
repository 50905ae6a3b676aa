"""ConvNeXt (Liu et al. 2022): the stock specs are torchvision's models, their analytic counts are fvcore's, and
a ConvNeXt stage inside a ResNet (a hybrid) builds, counts and exports."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torchvision
from conftest import CONVNEXTS, fast_subset
from parity import assert_same_outputs, load_for_comparison

import archspec
from archspec.counting.analytic import complexity
from archspec.counting.modules import module_counts
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.plan import load_plan
from archspec.plan.tensors import state_shapes
from archspec.tools.export import export_model

WEIGHTS = {
    "convnext_tiny": torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1,
    "convnext_small": torchvision.models.ConvNeXt_Small_Weights.IMAGENET1K_V1,
    "convnext_base": torchvision.models.ConvNeXt_Base_Weights.IMAGENET1K_V1,
    "convnext_large": torchvision.models.ConvNeXt_Large_Weights.IMAGENET1K_V1,
}
# The default, an odd non-square size, and a small square one (each stride-4 patch and stride-2 downsampling
# floors odd sizes).
SIZES = [None, (193, 161), (96, 96)]
HYBRID = "extends: resnet50\nstages:\n  3: {block: convnext}\n"


@pytest.mark.parametrize("name", fast_subset(CONVNEXTS, {"convnext_tiny"}))
def test_the_stock_convnext_has_torchvisions_state_dict_and_published_figures(name):
    reference = getattr(torchvision.models, name)()
    plan = load_plan(name)
    assert list(state_shapes(plan).items()) == [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    counts = complexity(plan)
    meta = WEIGHTS[name].meta
    assert counts.params == meta["num_params"] == sum(p.numel() for p in reference.parameters())
    # torchvision's `_ops` is the GFLOPS of conv and linear multiply-adds, to three decimals.
    assert round(counts.macs / 1e9, 3) == meta["_ops"]


@pytest.mark.parametrize("name", fast_subset(CONVNEXTS, {"convnext_tiny"}))
def test_the_stock_convnext_loads_torchvisions_weights_strictly_and_computes_the_same(name):
    torch.manual_seed(0)
    ours = archspec.build(name, device="cpu")
    reference = getattr(torchvision.models, name)()
    load_for_comparison(ours, reference)  # every norm's affine and every layer scale randomised
    assert_same_outputs(ours, reference, [(64, 64), (97, 75)])


def _equal_to_fvcore(source, size, operators=("adaptive_avg_pool2d", "conv", "layer_norm", "linear")) -> None:
    plan = load_plan(source, input_size=size)
    analytic, reference = complexity(plan), fvcore_complexity(plan)
    assert analytic.flops_by_op == reference.flops_by_op, size
    assert analytic.params == reference.params, size
    assert analytic.activations == reference.activations, size
    assert set(analytic.flops_by_op) == set(operators)


def test_convnext_tiny_counts_equal_fvcore_at_an_odd_non_square_size():
    _equal_to_fvcore("convnext_tiny", (97, 75))


@pytest.mark.slow
@pytest.mark.parametrize("name", CONVNEXTS)
def test_every_convnext_counts_equal_fvcore_at_three_sizes(name):
    for size in SIZES:
        _equal_to_fvcore(name, size)


def _fvcore_by_module(plan, model) -> dict[str, tuple[int, int]]:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    x = torch.zeros(1, plan.input_channels, *plan.input_size)
    analysis = FlopCountAnalysis(model.eval(), x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    flops, params = analysis.by_module(), parameter_count(model)
    return {name: (params.get(name, 0), flops.get(name, 0)) for name, _ in model.named_modules()}


def test_the_hybrid_counts_equal_fvcore_in_total_by_op_and_by_module(write):
    path = write("hybrid.yaml", HYBRID)
    for size in (None, (97, 75)):
        _equal_to_fvcore(path, size, ("adaptive_avg_pool2d", "batch_norm", "conv", "layer_norm", "linear"))
    plan = load_plan(path, input_size=(97, 75))
    model = archspec.build(path, input_size=(97, 75), device="cpu")
    expected = _fvcore_by_module(plan, model)
    rows = module_counts(plan)
    assert [row.module for row in rows] == list(expected)
    assert {row.module: (row.params, row.flops) for row in rows} == expected


def test_the_hybrid_opens_its_convnext_stage_with_a_downsampling_layer(write):
    plan = load_plan(write("hybrid.yaml", HYBRID))
    keys = list(state_shapes(plan))
    assert keys[keys.index("layer4.0.0.weight") : keys.index("layer4.0.0.weight") + 4] == [
        "layer4.0.0.weight",  # layer norm over the 1024 channels of layer3
        "layer4.0.0.bias",
        "layer4.0.1.weight",  # 2x2 stride-2 conv to 512
        "layer4.0.1.bias",
    ]
    assert state_shapes(plan)["layer4.0.1.weight"] == (512, 1024, 2, 2)
    assert state_shapes(plan)["layer4.1.layer_scale"] == (512, 1, 1)
    assert plan.sections[4].block == "convnext" and plan.sections[4].out_size == (7, 7)


@pytest.mark.slow  # the fast tier exports two ResNets to ONNX (test_export.py)
def test_the_hybrid_exports_to_onnx_that_matches_pytorch(write, tmp_path):
    path = write("hybrid.yaml", HYBRID)
    torch.manual_seed(0)
    model = archspec.build(path, device="cpu", input_size=64).eval()
    plan = load_plan(path, input_size=64)
    out = tmp_path / "hybrid.onnx"
    export_model(model, plan, "onnx", out, batch=None, check=False)
    onnx.checker.check_model(str(out), full_check=True)
    x = torch.randn(2, 3, 64, 64)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(got - want).max() < 1e-4 * max(1.0, float(np.abs(want).max()))


def test_a_convnext_has_three_weighted_layers_per_block_and_five_more():
    # The stem's conv, three downsampling convs and the classifier.
    blocks = sum(stage.depth for stage in load_plan("convnext_tiny").stages)
    assert archspec.count("convnext_tiny").layers == 3 * blocks + 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "extends: convnext_tiny\nstages:\n  1: {groups: 2}\n",
            "stages.1.groups: groups shapes bottleneck and regnet blocks only; stage 2 has convnext blocks",
        ),
        (
            # Located where the kernel is written, not at the parent's stage that first uses it.
            "extends: convnext_tiny\nblock: {type: convnext, kernel: 4}\n",
            "bad.yaml:2:33: block.kernel: a depthwise kernel of 4 has no centre; use an odd kernel",
        ),
        (
            "extends: convnext_tiny\nstages:\n  2: {block: {type: convnext, kernel: 6}}\n",
            "bad.yaml:3:39: stages.2.block.kernel: a depthwise kernel of 6 has no centre; use an odd kernel",
        ),
        (
            "extends: resnet50\nstages:\n  0: {block: regnet}\n",
            "block: bottleneck stages cannot be mixed with regnet",
        ),
        (
            # Fewer stride-2 stages cannot help a map the patchify stem has already emptied.
            "extends: convnext_tiny\ninput: {size: 3}\n",
            "stem: the feature map shrinks to 0x0 at a 4x4 conv for a 3x3 input; use a larger input.size or a "
            "smaller stem.patch (extended by",
        ),
        (
            # The message names the kind that set the layout, not kinds the network does not have.
            "extends: efficientnet_b0\nstages:\n  2: {block: {type: convnext}}\n",
            "bad.yaml:3:7: stages.2.block: convnext stages cannot be mixed with mbconv stages in one network (their "
            "module layouts differ; a network that opens with mbconv stages takes inverted_residual or mbconv)",
        ),
        (
            "extends: convnext_tiny\nnorm: group\n",
            "bad.yaml:2:1: norm: norm sets the network's norm, which nothing here uses: the patchify stem and the "
            "convnext blocks choose their own (stem.norm, block.norm)",
        ),
        (
            "extends: convnext_tiny\nnorm_groups: 8\n",
            "bad.yaml:2:1: norm_groups: norm_groups sets the network's norm, which nothing here uses",
        ),
    ],
)
def test_convnext_mistakes_are_located_messages(write, cli, text, message):
    path = write("bad.yaml", text)
    result = cli("validate", str(path))
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr


def test_flops_diff_and_fit_take_the_hybrid_and_the_stock_convnexts(write, cli, tmp_path):
    path = write("hybrid.yaml", HYBRID)
    result = cli("flops", "convnext_tiny", str(path), "--by-op")
    assert result.exit_code == 0, result.output
    assert "layer_norm" in result.stdout.splitlines()[0]
    assert cli("diff", "resnet50", str(path)).exit_code == 0
    result = cli("fit", "convnext_tiny", "--flops", "2G")
    assert result.exit_code == 0, result.output
    assert "extends: convnext_tiny" in result.stdout


@pytest.mark.parametrize(
    "block",
    [
        "{type: convnext, layer_scale: null}",  # channels last: the 1x1 down is zeroed
        "{type: convnext, layer_scale: null, norms: each}",  # channels first: the layer norm after the 1x1 down
        "{type: convnext, layer_scale: null, depthwise: middle}",  # channels first, no norm after the 1x1 down
        "{type: convnext, layer_scale: null, norms: each, norm: batch, downsample: block}",
    ],
)
def test_zero_init_residual_makes_every_convnext_block_start_as_the_identity(block):
    overrides = [
        "input.size=32",
        "stem.width=16",
        "stages=[{depth: 2, width: 16}, {depth: 1, width: 16, stride: 1}]",
        f"block={block}",
    ]
    x = torch.randn(2, 16, 8, 8)
    for zero in (False, True):
        torch.manual_seed(0)
        model = archspec.build("convnext_tiny", device="cpu", overrides=[f"zero_init_residual={zero}", *overrides])
        blocks = [m for m in model.modules() if type(m).__name__ == "ResidualBlock"]
        assert len(blocks) == 3
        with torch.no_grad():
            same = [torch.allclose(b.eval()(x), x) for b in blocks]
        assert same == [zero] * 3, (zero, same)
