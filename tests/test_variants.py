"""Variants: timm's ResNet family, `extends` chains, `--set`, `diff`, and the effect of every knob."""

from __future__ import annotations

import re

import pytest
import timm
import torch
from conftest import ROOT, TIMM_ARCHS, fast_subset
from parity import assert_same_outputs, load_for_comparison
from torch import nn

import archspec
from archspec.counting.analytic import complexity
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.nn.layers import ResidualBlock
from archspec.plan import load_plan
from archspec.tools.variants import KNOBS, knob_table


# Fast tier: ResNet-D (deep stem, average-pool shortcut) and SE; every timm architecture in the slow tier.
@pytest.mark.parametrize("name", fast_subset(TIMM_ARCHS, {"resnet18d", "seresnet50"}))
def test_timm_weights_load_strictly_and_outputs_match(name):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False)
    model = archspec.build(name, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(96, 96), (97, 130)])


# Dilation (output_stride) and ResNet-D's average-pool shortcut, for basic and bottleneck blocks: timm's
# resnet18/resnet50 and their -D variants, at both output strides; the fast tier keeps resnet18d at both and
# resnet50d at 16, the others run in the slow tier.
_DILATED = [
    (name, stride)
    if name == "resnet18d" or (stride == 16 and name == "resnet50d")
    else pytest.param(name, stride, marks=pytest.mark.slow)
    for stride in (8, 16)
    for name in ("resnet18", "resnet18d", "resnet50", "resnet50d")
]


@pytest.mark.parametrize("name,output_stride", _DILATED)
def test_dilated_stages_equal_timms(name, output_stride):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False, output_stride=output_stride)
    model = archspec.build(name, device="cpu", overrides=[f"output_stride={output_stride}"])
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(96, 96), (97, 130)])


# --- extends and --set ------------------------------------------------------------------------


def test_extends_chain_three_deep_with_set_on_top_resolves_as_documented(write, cli):
    write("base.yaml", "extends: resnet18\nhead: {num_classes: 100, dropout: 0.1}\nactivation: silu\n")
    write("nets/mid.yaml", "extends: ../base.yaml\nshortcut: C\nhead: {num_classes: 10}\n")
    top = write("nets/top.yaml", "extends: mid.yaml\nstages:\n  - {depth: 1, width: 32}\n  - {depth: 1, width: 64}\n")
    spec = archspec.load_spec(top, overrides=["stages.1.depth=3", "head.dropout=0.5"])
    assert spec.name == "top"  # names are not inherited
    assert spec.activation == "silu"  # from base
    assert spec.shortcut == "C"  # from mid
    assert spec.head.num_classes == 10  # mid's mapping merges over base's ...
    assert spec.head.dropout == 0.5  # ... and --set merges on top
    assert [(s.depth, s.width) for s in spec.stages] == [(1, 32), (3, 64)]  # lists replaced whole, then --set
    assert spec.stem.type == "imagenet" and spec.block == "basic"  # from the stock resnet18
    shown = cli("show", top, "--set", "stages.1.depth=3", "--set", "head.dropout=0.5")
    assert shown.exit_code == 0
    assert "shortcut: C" in shown.stdout and "activation: silu" in shown.stdout and "num_classes: 10" in shown.stdout


def test_extends_cycle_is_reported_with_the_chain(write):
    write("a.yaml", "extends: b.yaml\nstages: [{depth: 1, width: 8}]\n")
    b = write("b.yaml", "extends: a.yaml\n")
    with pytest.raises(
        archspec.SpecError, match=r"`extends` makes a cycle: .*b\.yaml -> .*a\.yaml -> .*b\.yaml"
    ) as info:
        archspec.load_spec(b)
    assert "(extended by" in str(info.value)


def test_error_in_a_parent_points_into_the_parent_and_names_the_child(write):
    parent = write("parent.yaml", "stages:\n  - {depth: 0, width: 8}\n")
    child = write("child.yaml", "\nextends: parent.yaml\n")
    with pytest.raises(archspec.SpecError) as info:
        archspec.load_spec(child)
    message = str(info.value)
    assert message.startswith(f"{parent}:2:13: stages.0.depth:")
    assert message.endswith(f"(extended by {child}:2)")


def test_missing_parent_is_located_at_the_extends_line(write):
    child = write("child.yaml", "name: x\nextends: nowhere.yaml\n")
    with pytest.raises(archspec.SpecError, match=re.escape(f"{child}:2:10: extends: no spec file")):
        archspec.load_spec(child)


def test_set_rejects_an_index_out_of_range_and_a_missing_equals():
    with pytest.raises(
        archspec.SpecError, match=r"--set stages.9.depth=3: stages.9: index 9 is out of range: the list has 4 entries"
    ):
        archspec.load_spec("resnet50", overrides=["stages.9.depth=3"])
    with pytest.raises(archspec.SpecError, match="expected KEY=VALUE"):
        archspec.load_spec("resnet50", overrides=["stages"])


def test_set_values_are_validated_like_the_file():
    with pytest.raises(
        archspec.SpecError, match=r"--set shortcut=D: shortcut: got the text 'D'; expected one of 'A', 'B' or 'C'"
    ):
        archspec.load_spec("resnet50", overrides=["shortcut=D"])


def test_diff_lists_changed_fields_and_the_change_in_counts(cli):
    result = cli("diff", "resnet50", "resnext50_32x4d")
    assert result.exit_code == 0
    assert "groups: null -> 32" in result.stdout and "width_per_group: 64 -> 4" in result.stdout
    assert "25.56M" in result.stdout and "25.03M" in result.stdout and "-2.1%" in result.stdout


# --- knobs ------------------------------------------------------------------------------------


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, ResidualBlock)]


def _check_stride_in(m):
    assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)


def _check_deep_stem(m):
    assert isinstance(m.conv1, nn.Sequential) and sum(isinstance(x, nn.Conv2d) for x in m.conv1) == 3


def _check_no_pool(m):
    assert not hasattr(m, "maxpool")


def _check_avg_down(m):
    assert isinstance(m.layer2[0].downsample[0], nn.AvgPool2d) and isinstance(m.layer1[0].downsample[0], nn.Identity)


def _check_se(m):
    assert m.layer1[0].se.fc1.out_channels == 16 and m.layer4[0].se.fc1.out_channels == 128


def _check_preact(m):
    block = m.layer2[0]
    assert block.bn1.num_features == 256 and not block._post and block.shortcut_from_pre
    assert hasattr(m, "final_norm") and not hasattr(m, "bn1")


def _check_resnext(m):
    assert m.layer1[0].conv2.groups == 32 and m.layer1[0].conv2.out_channels == 128


def _check_wide(m):
    assert m.layer1[0].conv2.out_channels == 128 and m.layer1[0].conv3.out_channels == 256


def _check_option_c(m):
    assert all(isinstance(b.downsample, nn.Sequential) for b in _blocks(m))


def _check_drop(m):
    blocks = _blocks(m)
    assert blocks[0].drop_path is None and blocks[-1].drop_path.p == pytest.approx(0.1)
    middle = len(blocks) // 2
    assert blocks[middle].drop_path.p == pytest.approx(0.1 * middle / (len(blocks) - 1))
    assert m.dropout.p == 0.2


def _check_os16(m):
    assert (
        m.layer4[0].conv2.stride == (1, 1)
        and m.layer4[0].conv2.dilation == (1, 1)
        and m.layer4[1].conv2.dilation == (2, 2)
    )


def _check_os8(m):
    assert (
        m.layer3[1].conv2.dilation == (2, 2)
        and m.layer4[0].conv2.dilation == (2, 2)
        and m.layer4[1].conv2.dilation == (4, 4)
    )


def _check_group_norm(m):
    assert isinstance(m.bn1, nn.GroupNorm) and m.bn1.num_groups == 32
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())


def _check_no_norm(m):
    assert not any(isinstance(x, (nn.BatchNorm2d, nn.GroupNorm)) for x in m.modules())
    assert m.layer1[0].conv1.bias is not None


def _check_silu(m):
    assert any(isinstance(x, nn.SiLU) for x in m.modules())
    # Only the SE units (absent here) keep ReLU whatever the activation.
    assert not any(isinstance(x, nn.ReLU) for x in m.modules())


def _check_io(m):
    assert m.conv1.in_channels == 4 and m.fc.out_features == 10


def _check_features(m):
    assert m.taps == (("layer2",), ("layer3",), ("layer4",)) and not hasattr(m, "fc")


CHECKS = [
    _check_stride_in,
    _check_deep_stem,
    _check_no_pool,
    _check_avg_down,
    _check_se,
    _check_preact,
    _check_resnext,
    _check_wide,
    _check_option_c,
    _check_drop,
    _check_os16,
    _check_os8,
    _check_group_norm,
    _check_no_norm,
    _check_silu,
    _check_io,
    _check_features,
]


@pytest.mark.parametrize("knob,check", list(zip(KNOBS, CHECKS, strict=True)), ids=[k[0] for k in KNOBS])
def test_each_knob_shapes_the_module_and_counts_stay_exact(knob, check):
    # ResNet-50 with two blocks a stage: every place a knob acts (a stage's first block and the others, each
    # stage's stride) at half the cost of fvcore's trace of the whole network.
    overrides = [*knob[1], *(f"stages.{i}.depth=2" for i in range(4))]
    plan = load_plan("resnet50", overrides=overrides, input_size=64)
    model = archspec.build("resnet50", device="cpu", overrides=overrides, input_size=64).eval()
    check(model)
    analytic = complexity(plan)
    assert analytic.params == sum(p.numel() for p in model.parameters())
    reference = fvcore_complexity(plan)
    assert analytic.flops_by_op == reference.flops_by_op
    x = torch.randn(1, plan.input_channels, 64, 64)
    with torch.no_grad():
        y = model(x)
    shapes = [tuple(t.shape[1:]) for t in y] if isinstance(y, list) else [tuple(y.shape[1:])]
    assert shapes == list(plan.output_shapes)


def test_features_only_backbone_returns_the_chosen_stages_at_224():
    model = archspec.build("resnet50", device="cpu", overrides=["head.features=[0, 2, 4]"]).eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape) for o in outputs] == [(1, 64, 56, 56), (1, 512, 28, 28), (1, 2048, 7, 7)]


def test_stochastic_depth_is_random_in_training_and_off_in_eval():
    model = archspec.build("resnet20", device="cpu", overrides=["drop_path=0.5"])
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        torch.manual_seed(0)
        a = model(x)
        torch.manual_seed(1)
        assert not torch.equal(a, model(x))


def test_knob_table_in_docs_is_current():
    text = (ROOT / "docs" / "variants.md").read_text()
    section = text.split("<!-- knobs:begin -->\n", 1)[1].split("<!-- knobs:end -->", 1)[0]
    assert section.strip() == knob_table().strip()
