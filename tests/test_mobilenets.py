"""MobileNetV2's inverted residuals and EfficientNet's MBConv blocks, and the scaling rule that widens and deepens
them, are torchvision's: state_dict layout at every multiplier, shortcuts where torchvision has them, the head's conv
in `features`."""

from __future__ import annotations

import pytest
import torch
import torchvision
from test_by_module import assert_equal_to_fvcore, fvcore_by_module

import archspec
from archspec.counting.analytic import complexity
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.plan.ops import Residual


def _same_layout(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    got, want = ours.state_dict(), reference.state_dict()
    assert list(got) == list(want)
    assert all(got[k].shape == want[k].shape for k in want)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.4])
def test_mobilenet_v2_width_multiplier_is_torchvisions(width):
    ours = archspec.build("mobilenet_v2", device="meta", overrides=[f"scale.width={width}"])
    with torch.device("meta"):
        reference = torchvision.models.mobilenet_v2(width_mult=width)
    _same_layout(ours, reference)


def test_an_inverted_residual_adds_its_input_only_where_stride_and_width_keep():
    plan = archspec.load_plan("mobilenet_v2")
    blocks = [op for _, op in plan.children[0][1].items if isinstance(op, Residual)]  # type: ignore[union-attr]
    assert len(blocks) == 17
    for block in blocks:
        keeps = block.stride == 1 and block.in_channels == block.out_channels
        assert block.shortcut_kind == ("identity" if keeps else "none")
    # torchvision's use_res_connect: 10 of MobileNetV2's 17 blocks.
    assert sum(block.shortcut_kind == "identity" for block in blocks) == 10


def test_an_expansion_of_one_drops_the_expanding_conv():
    model = archspec.build("mobilenet_v2", device="meta")
    first, second = model.features[1].conv, model.features[2].conv
    assert [type(m).__name__ for m in first] == ["Sequential", "Conv2d", "BatchNorm2d"]
    assert [type(m).__name__ for m in second] == ["Sequential", "Sequential", "Conv2d", "BatchNorm2d"]
    assert second[1][0].groups == second[1][0].in_channels == 96  # depthwise: 16 x 6 channels, one group each


@pytest.mark.parametrize(
    "name,width,depth", [("efficientnet_b4", 1.4, 1.8), ("efficientnet_b5", 1.6, 2.2), ("efficientnet_b7", 2.0, 3.1)]
)
def test_compound_scaling_of_b0_gives_torchvisions_larger_efficientnets(name, width, depth):
    """B4 to B7 have no stock spec: B0 with their multipliers has their layout all the same."""
    ours = archspec.build("efficientnet_b0", device="meta", overrides=[f"scale={{width: {width}, depth: {depth}}}"])
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    _same_layout(ours, reference)


def test_mbconv_squeezes_from_the_block_input_and_drops_with_torchvisions_rates():
    model = archspec.build("efficientnet_b0", device="meta")
    # Stage 2's second block: input 24, expanded to 144, squeezed to 24 // 4 = 6.
    se = model.features[2][1].block[2]
    assert (se.fc1.in_channels, se.fc1.out_channels) == (144, 6)
    plan = archspec.load_plan("efficientnet_b0")
    blocks = [b for _, stage in plan.children[0][1].items[1:-1] for _, b in stage.items]  # type: ignore[union-attr]
    assert len(blocks) == 16
    # torchvision: block i of 16 drops its branch with 0.2 x i / 16, where it has a shortcut at all.
    assert [b.drop_path for b in blocks] == [
        0.2 * i / 16 if b.shortcut_kind == "identity" else 0.0 for i, b in enumerate(blocks)
    ]
    assert sum(b.shortcut_kind == "identity" for b in blocks) == 9


def test_a_stage_of_mbconv_blocks_in_a_resnet_builds_counts_and_names_its_blocks_as_resnet_does():
    spec = {"extends": "resnet50", "input": {"size": 64}, "stages": {2: {"block": "mbconv", "width": 128}}}
    plan = archspec.load_plan(spec)
    model = archspec.build(spec, device="cpu").eval()
    assert "layer3.0.block.2.fc1.weight" in model.state_dict()
    analytic = complexity(plan)
    assert analytic.params == sum(p.numel() for p in model.parameters())
    assert analytic.flops_by_op == fvcore_complexity(plan).flops_by_op
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_the_scale_rule_rounds_widths_to_the_divisor_and_depths_up():
    spec = {
        "stem": {"type": "simple", "width": 32},
        "block": "inverted_residual",
        "stages": [{"depth": 3, "width": 20}, {"depth": 1, "width": 100}],
        "head": {"conv": 1000},
        "scale": {"width": 0.5, "depth": 1.5, "divisor": 8},
    }
    plan = archspec.load_plan(spec)
    # 20 x 0.5 = 10 -> 16 (at least the divisor); 100 x 0.5 = 50 -> 48; depths 3 x 1.5 -> 5, 1 x 1.5 -> 2;
    # the stem 32 x 0.5 = 16; the head's conv only grows, so it keeps 1000.
    assert [(s.depth, s.width) for s in plan.stages] == [(5, 16), (2, 48)]
    assert plan.sections[0].out_channels == 16
    assert plan.sections[-1].in_channels == 48
    assert archspec.build(spec, device="meta").features[-1][0].out_channels == 1000


NEW_SPECS = ["mobilenet_v2", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_SPECS)
@pytest.mark.parametrize("size", [None, 96, (97, 130)], ids=["native", "96", "97x130"])
def test_every_module_equals_fvcore_at_three_sizes(name, size):
    """Total, by operator and by module at depths 1 to 3, at the native size, a small square and an odd,
    non-square size."""
    plan = archspec.load_plan(name, input_size=size)
    analytic, reference = complexity(plan), fvcore_complexity(plan)
    assert (analytic.params, analytic.flops_by_op, analytic.activations) == (
        reference.params,
        reference.flops_by_op,
        reference.activations,
    )
    expected = fvcore_by_module(plan)
    for depth in (1, 2, 3):
        assert_equal_to_fvcore(name, expected, depth, input_size=size)


def test_show_prints_a_scaled_network_that_validates_back_to_the_same_network(cli, tmp_path):
    """The scale is applied once (the printed widths are the scaled ones, with no `scale:` left to apply again),
    and a stage's `block:` mapping keeps only what it set, so the network's SiLU is not overridden."""
    result = cli("show", "efficientnet_b2")
    assert result.exit_code == 0, result.output
    assert "scale: null" in result.stdout and "activation: relu" not in result.stdout
    path = tmp_path / "b2.yaml"
    path.write_text(result.stdout)
    assert archspec.count(str(path)).params == archspec.count("efficientnet_b2").params == 9109994


def test_the_build_report_shows_the_heads_conv_before_the_classifier():
    from archspec.tools.build import stage_rows

    for name, channels in (("mobilenet_v2", "320 -> 1280 -> 1000"), ("efficientnet_b3", "384 -> 1536 -> 1000")):
        plan = archspec.load_plan(name)
        head = stage_rows(plan, complexity(plan))[-1]
        assert (head.stage, head.block, head.channels) == ("head", "conv + fc", channels)
    plan = archspec.load_plan("resnet50")
    head = stage_rows(plan, complexity(plan))[-1]
    assert (head.block, head.channels) == ("fc", "2048 -> 1000")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("extends: mobilenet_v2\nblock: {type: inverted_residual, expand_ratio: 0.01}\n", "2:48: block.expand_ratio"),
        (
            "extends: mobilenet_v2\nstages:\n  3: {block: {type: inverted_residual, expand_ratio: 0.001}}\n",
            "3:54: stages.3.block.expand_ratio",
        ),
    ],
)
def test_an_expansion_that_leaves_no_inner_channel_is_reported_where_it_is_written(write, text, where):
    path = write("small.yaml", text)
    with pytest.raises(archspec.SpecError) as info:
        archspec.load_plan(path)
    (problem,) = info.value.problems
    assert str(problem).startswith(f"{path}:{where}: the inner width rounds to 0 (input width "), str(problem)
