"""Every block knob per stage: a stage's value overrides the network's for that stage only."""

from __future__ import annotations

import pytest
import torch
import torchvision
from parity import assert_same_outputs, load_for_comparison
from torch import nn
from torchvision.models.regnet import BlockParams, RegNet

import archspec
from archspec.counting.analytic import complexity
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.plan import load_plan

HYBRID = """extends: resnet50
description: ResNet-50 whose last stage is ResNeXt 32x4d.
stages:
  - {depth: 3, width: 64}
  - {depth: 4, width: 128}
  - {depth: 6, width: 256}
  - {depth: 3, width: 512, groups: 32, width_per_group: 4}
"""


def test_a_resnet50_with_a_resnext_last_stage_is_torchvisions_hybrid(write):
    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    reference.layer4 = torchvision.models.resnext50_32x4d().layer4
    model = archspec.build(write("hybrid.yaml", HYBRID), device="cpu")
    assert list(model.state_dict()) == list(reference.state_dict())
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(128, 128), (97, 130)])
    assert model.layer4[0].conv2.groups == 32 and model.layer3[0].conv2.groups == 1


def test_a_stage_changed_by_index_over_extends_is_the_same_network_as_the_whole_list(write):
    by_index = write("by_index.yaml", "extends: resnet50\nstages:\n  3: {groups: 32, width_per_group: 4}\n")
    assert archspec.load_spec(by_index).stages == archspec.load_spec(write("hybrid.yaml", HYBRID)).stages
    # Down a chain: each child changes the stages it names and keeps its parent's others.
    child = write("child.yaml", "extends: by_index.yaml\nstages:\n  '0': {depth: 2}\n  1: {se: {reduction: 16}}\n")
    stages = archspec.load_spec(child).stages
    assert [(s.depth, s.width, s.groups, s.se is not None) for s in stages] == [
        (2, 64, None, False),
        (4, 128, None, True),
        (6, 256, None, False),
        (3, 512, 32, False),
    ]
    # A mistake inside a changed stage is located where the child wrote it.
    broken = write("broken.yaml", "extends: child.yaml\nstages:\n  3: {width_per_group: 3.5}\n")
    with pytest.raises(archspec.SpecError) as caught:
        archspec.load_spec(broken)
    assert [str(p) for p in caught.value.problems] == [
        f"{broken}:3:24: stages.3.width_per_group: expected an integer, got the number 3.5"
    ]


def test_se_in_the_last_two_stages_only(write):
    spec = write(
        "se_late.yaml",
        "extends: resnet50\nstages:\n  - {depth: 3, width: 64}\n  - {depth: 4, width: 128}\n"
        "  - {depth: 6, width: 256, se: {reduction: 16}}\n  - {depth: 3, width: 512, se: {reduction: 16}}\n",
    )
    model = archspec.build(spec, device="cpu", input_size=64)
    assert not hasattr(model.layer1[0], "se") and not hasattr(model.layer2[3], "se")
    assert model.layer3[0].se.fc1.out_channels == 64 and model.layer4[2].se.fc1.out_channels == 128
    plan = load_plan(spec, input_size=64)
    analytic = complexity(plan)
    assert analytic.params == sum(p.numel() for p in model.parameters())
    assert analytic.flops_by_op == fvcore_complexity(plan).flops_by_op


def test_a_stage_can_turn_off_the_networks_se(write):
    spec = write(
        "se_off.yaml",
        "extends: seresnet50\nstages:\n  - {depth: 3, width: 64, se: false}\n  - {depth: 1, width: 128}\n",
    )
    model = archspec.build(spec, device="cpu", input_size=64)
    assert not hasattr(model.layer1[0], "se") and hasattr(model.layer2[0], "se")


def test_a_bottleneck_ratio_that_changes_per_stage_equals_torchvisions_regnet(write):
    # torchvision's bottleneck multiplier is 1 / archspec's (and the paper's) bottleneck ratio b.
    multipliers = [1.0, 0.5, 0.25, 0.5]
    params = BlockParams(
        depths=[1, 2, 2, 1],
        widths=[32, 64, 128, 256],
        group_widths=[8, 16, 16, 32],
        bottleneck_multipliers=multipliers,
        strides=[2, 2, 2, 2],
        se_ratio=0.25,
    )
    torch.manual_seed(0)
    reference = RegNet(params, num_classes=10)
    stages = "\n".join(
        f"  - {{depth: {d}, width: {w}, stride: 2, group_width: {g}, bottleneck_ratio: {1 / m:g}}}"
        for d, w, g, m in zip(params.depths, params.widths, params.group_widths, multipliers, strict=True)
    )
    spec = write(
        "ratios.yaml",
        "stem: {type: simple}\nblock: regnet\nse: {ratio: 0.25, of: input}\nhead: {num_classes: 10}\ninput: "
        f"{{size: 64}}\nstages:\n{stages}\n",
    )
    model = archspec.build(spec, device="cpu")
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(64, 64), (65, 96)])
    assert model.trunk_output.block3[0].f.b[0].out_channels == 32  # 128 / 4


def test_a_stage_group_width_overrides_the_networks_groups(write):
    # With group_width, the inner width is width x width_per_group / 64 (one "group" in torchvision's formula).
    spec = write(
        "gw.yaml",
        "extends: resnext50_32x4d\nstages:\n  - {depth: 1, width: 64, group_width: 16, width_per_group: 128}\n  - "
        "{depth: 1, width: 128}\n",
    )
    model = archspec.build(spec, device="cpu", input_size=64)
    assert model.layer1[0].conv2.in_channels == 128 and model.layer1[0].conv2.groups == 128 // 16
    assert model.layer2[0].conv2.groups == 32 and model.layer2[0].conv2.in_channels == 256


@pytest.mark.parametrize(
    "text,line",
    [
        (
            "stages:\n  - {depth: 1, width: 64, groups: 4}\n",
            "stages.0.groups: groups shapes bottleneck and regnet blocks only; stage 1 has basic blocks",
        ),
        (
            "block: bottleneck\nstages:\n  - {depth: 1, width: 64, groups: 4, group_width: 16}\n",
            "stages.0.group_width: group_width and groups are exclusive: give the channels per group or the number "
            "of groups, not both",
        ),
        (
            "block: bottleneck\nstages:\n  - {depth: 1, width: 64, group_width: 24}\n",
            "stages.0.group_width: group width 24 does not divide the inner width 64 (width 64 x width_per_group "
            "64 / 64) of stage 1's blocks; "
            "choose a group width that divides it, or change the width",
        ),
        (
            "stages:\n  - {depth: 1, width: 64}\n  - {depth: 1, width: 64, block: regnet}\n",
            "stages.1.block: regnet stages cannot be mixed with basic stages in one network (their module layouts "
            "differ; a network that opens with basic stages takes basic, bottleneck, plain, convnext, "
            "inverted_residual or mbconv)",
        ),
        (
            "stages:\n  - {depth: 1, width: 64, bottleneck_ratio: 2}\n",
            "stages.0.bottleneck_ratio: bottleneck_ratio shapes regnet blocks only; stage 1 has basic blocks",
        ),
        (
            "stages:\n  - {depth: 1, width: 64, se: {ratio: 0.25, reduction: 4}}\n",
            "stages.0.se.reduction: reduction and ratio are exclusive: the reduced width is either a ratio or "
            "width / reduction",
        ),
        (
            "block: vgg\nstem: {type: none}\nstages:\n  - {depth: 1, width: 64, preact: true}\n",
            "stages.0.preact: preact shapes basic and bottleneck blocks only; stage 1 has vgg blocks",
        ),
        (
            "block: plain\nzero_init_residual: true\nstages:\n  - {depth: 1, width: 64}\n",
            "zero_init_residual: zero_init_residual starts residual branches at zero, but this spec has no "
            "residual blocks (plain blocks have no shortcut)",
        ),
    ],
)
def test_a_knob_on_the_wrong_stage_names_the_stage_field(write, cli, text, line):
    path = write("bad.yaml", text)
    result = cli("validate", path)
    assert result.exit_code == 1
    assert [entry.split(": ", 1)[1] for entry in result.stderr.splitlines()] == [line]


def test_network_values_are_defaults_stage_values_win(write):
    spec = archspec.load_plan(
        write(
            "mix.yaml",
            "activation: silu\nstages:\n  - {depth: 1, width: 8, activation: gelu}\n  - {depth: 1, width: 8}\n",
        ),
        input_size=32,
    )
    model = archspec.build(spec.spec.model_dump(mode="json"), device="cpu", input_size=32)
    assert (
        isinstance(model.layer1[0].act1, nn.GELU)
        and isinstance(model.layer2[0].act1, nn.SiLU)
        and isinstance(model.act, nn.SiLU)
    )


def test_preact_on_the_first_stage_only_keeps_the_stems_norm_out_and_the_heads_final_norm_out(write):
    model = archspec.build(
        write(
            "p.yaml",
            "extends: resnet18\nstages:\n  - {depth: 1, width: 64, preact: true}\n  - {depth: 1, width: 128}\n",
        ),
        device="cpu",
        input_size=64,
    )
    assert not hasattr(model, "bn1") and not hasattr(model, "final_norm")
    assert hasattr(model.layer1[0], "bn1") and not model.layer1[0]._post and model.layer2[0]._post
