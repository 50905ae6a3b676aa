"""RegNets (Radosavovic et al. 2020): the generator is torchvision's, and every stock RegNet is torchvision's model."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torchvision
from conftest import REGNETS, fast_subset
from parity import assert_same_outputs, load_for_comparison
from torchvision.models.regnet import BlockParams, RegNet

import archspec
from archspec.lang.schema import RegNetRule
from archspec.plan.generators import expand_regnet
from archspec.tools.paper import PAPER_REGNET, TORCHVISION_REGNET

# Built and compared with torchvision's model in the fast tier: one of each family (RegNetX and RegNetY at
# 400MF). The others (up to regnet_y_128gf, 645M parameters) are built in the slow tier; the counts of all of
# them, regnet_y_800mf and regnet_y_8gf among them (where pycls's arithmetic and torchvision's round apart),
# are checked against torchvision's published figures everywhere.
FAST_BUILT = {"regnet_x_400mf", "regnet_y_400mf"}


def _first_weights_meta(name: str) -> dict:
    return next(iter(torchvision.models.get_model_weights(name))).meta


def _check_against_torchvision(name: str) -> None:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    model = archspec.build(name, device="cpu")
    assert list(model.state_dict()) == list(reference.state_dict())
    assert all(model.state_dict()[k].shape == v.shape for k, v in reference.state_dict().items())
    load_for_comparison(model, reference)
    size = archspec.load_plan(name).input_size
    assert_same_outputs(model, reference, [size, (97, 130)])


@pytest.mark.parametrize("name", fast_subset(REGNETS, FAST_BUILT))
def test_stock_regnet_is_torchvisions_model(name):
    _check_against_torchvision(name)


@pytest.mark.parametrize("name", REGNETS)
def test_counts_equal_torchvisions_published_metadata(name):
    meta = _first_weights_meta(name)
    counts = archspec.count(name)
    assert counts.params == meta["num_params"]
    assert round(counts.macs / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)


def test_the_torchvision_figures_in_docs_paper_md_are_torchvisions():
    for name, (params, ops) in TORCHVISION_REGNET.items():
        meta = _first_weights_meta(name)
        assert (meta["num_params"], meta["_ops"]) == (params, ops), name


@pytest.mark.parametrize("name", sorted(PAPER_REGNET))
def test_with_pycls_arithmetic_the_counts_round_to_the_papers_figures(name):
    flops, params = PAPER_REGNET[name]
    counts = archspec.count(name, overrides=["stages.regnet.arithmetic=pycls"])
    assert round(counts.macs / 1e9, 1) == flops
    assert round(counts.params / 1e6, 1) == params


def _torchvision_stages(depth, w0, wa, wm, group_width):
    params = BlockParams.from_init_params(depth=depth, w_0=w0, w_a=wa, w_m=wm, group_width=group_width)
    return params.depths, params.widths, params.group_widths


def _near_tie(depth, w0, wa, wm) -> bool:
    """A block whose log-width lands within float32 rounding of halfway between two quantization steps."""
    for j in range(depth):
        steps = math.log((w0 + wa * j) / w0) / math.log(wm)
        if abs(steps - math.floor(steps) - 0.5) < 1e-6:
            return True
    return False


def test_generator_gives_torchvisions_stages_for_random_rules():
    """2,000 random rules: stages equal torchvision's BlockParams, except where a block sits exactly halfway
    between two width steps (torch's float32 log is not correctly rounded, archspec's emulation is)."""
    rng = random.Random(0)
    ties = 0
    for _ in range(2000):
        depth, w0 = rng.randint(1, 40), 8 * rng.randint(1, 48)
        wa, wm = round(rng.uniform(0, 200), rng.choice([0, 1, 2])), round(rng.uniform(1.05, 3.2), rng.choice([1, 2, 3]))
        group_width = rng.choice([1, 8, 16, 24, 48, 56, 120, 232])
        stages = expand_regnet(RegNetRule(depth=depth, w0=w0, wa=wa, wm=wm, group_width=group_width))
        ours = ([s.depth for s in stages], [s.width for s in stages], [s.group_width for s in stages])
        if ours != _torchvision_stages(depth, w0, wa, wm, group_width):
            assert _near_tie(depth, w0, wa, wm), (depth, w0, wa, wm, group_width)
            ties += 1
    assert ties <= 2


def test_a_regnet_written_from_its_five_numbers_equals_torchvisions(write):
    spec = write(
        "my_regnet.yaml",
        "stem: {type: simple}\nblock: regnet\nstages:\n  regnet: {depth: 13, w0: 64, wa: 30.5, wm: 2.3, "
        "group_width: 32, se_ratio: 0.25}\n"
        "head: {num_classes: 17}\ninput: {size: 160}\n",
    )
    params = BlockParams.from_init_params(depth=13, w_0=64, w_a=30.5, w_m=2.3, group_width=32, se_ratio=0.25)
    torch.manual_seed(0)
    reference = RegNet(params, num_classes=17)
    model = archspec.build(spec, device="cpu")
    assert (
        sum(p.numel() for p in model.parameters())
        == sum(p.numel() for p in reference.parameters())
        == archspec.count(spec).params
    )
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(160, 160), (97, 130)])


def test_show_prints_the_stages_the_generator_expands_to(cli):
    result = cli("show", "regnet_x_400mf")
    assert result.exit_code == 0
    assert (
        "# stages expanded from the generator: regnet {depth: 22, w0: 24, wa: 24.48, wm: 2.54, group_width: 16}"
        in result.stdout
    )
    params = BlockParams.from_init_params(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)
    for depth, width, group_width in zip(params.depths, params.widths, params.group_widths, strict=True):
        assert (
            f"- {{depth: {depth}, width: {width}, stride: 2, block: regnet, group_width: {group_width}}}"
            in result.stdout
        )


def test_the_shown_expansion_is_the_same_network(cli, tmp_path):
    shown = tmp_path / "expanded.yaml"
    shown.write_text(cli("show", "regnet_y_800mf").stdout)
    assert archspec.load_plan(shown).children == archspec.load_plan("regnet_y_800mf").children


def test_diff_compares_expanded_stages(cli):
    result = cli("diff", "regnet_x_400mf", "regnet_x_800mf")
    assert result.exit_code == 0
    assert "stages.0.width: 32 -> 64" in result.stdout and "stages.3.depth: 12 -> 5" in result.stdout


def test_a_generator_merges_over_its_parent_with_extends(write):
    child = write("wider.yaml", "extends: regnet_x_400mf\nstages:\n  regnet: {wm: 2.7}\n")
    plan = archspec.load_plan(child)
    expected = expand_regnet(RegNetRule(depth=22, w0=24, wa=24.48, wm=2.7, group_width=16))
    assert [(s.depth, s.width) for s in plan.stages] == [(s.depth, s.width) for s in expected]


@pytest.mark.parametrize(
    "rule,message",
    [
        (
            "{depth: 22, w0: 20, wa: 24.48, wm: 2.54, group_width: 16}",
            "stages.regnet.w0: expected a value that is a multiple of 8, got 20",
        ),
        (
            "{depth: 22, w0: 24, wa: 24.48, wm: 1.0, group_width: 16}",
            "stages.regnet.wm: expected a value greater than 1, got the number 1.0",
        ),
        (
            "{depth: 22, w0: 24, wa: -1, wm: 2.5, group_width: 16}",
            "stages.regnet.wa: expected a value of at least 0, got -1",
        ),
        ("{depth: 22, w0: 24, wa: 24.48, wm: 2.54}", "stages.regnet.group_width: required field is missing"),
        (
            "{depth: 22, w0: 24, wa: 24.48, wm: 2.54, group_widht: 16}",
            "stages.regnet.group_widht: unknown key `group_widht`; did you mean `group_width`?",
        ),
        (
            "{depth: 22, w0: 24, wa: 24.48, wm: 2.54, group_width: 16, se_ratio: 2}",
            "stages.regnet.se_ratio: expected a value of at most 1, got 2",
        ),
        # A number the generated blocks cannot take is refused, not dropped.
        (
            "{depth: 16, w0: 48, wa: 27.89, wm: 2.09, group_width: 8, se_ratio: 0.25, block: convnext}",
            "stages.regnet.se_ratio: se_ratio sets the generated blocks' `se`, which convnext blocks do not take; "
            "write `se_ratio: null` or generate blocks that take it",
        ),
        (
            "{depth: 16, w0: 48, wa: 27.89, wm: 2.09, group_width: 8, se_ratio: 0.25, block: mbconv}",
            "stages.regnet.se_ratio: se_ratio sets the generated blocks' `se`, which mbconv blocks do not take; "
            "write `se_ratio: null` or generate blocks that take it",
        ),
        (
            "{depth: 13, w0: 64, wa: 30.5, wm: 2.3, group_width: 8, bottleneck_ratio: 2, block: bottleneck}",
            "stages.regnet.bottleneck_ratio: bottleneck_ratio sets the generated blocks' `bottleneck_ratio`, which "
            "bottleneck blocks do not take; write `bottleneck_ratio: 1` or generate blocks that take it",
        ),
    ],
)
def test_a_malformed_generator_is_a_located_error(write, rule, message):
    spec = write("bad.yaml", f"block: regnet\nstem: {{type: simple}}\nstages:\n  regnet: {rule}\n")
    with pytest.raises(archspec.SpecError) as info:
        archspec.load_plan(spec)
    assert message in [p.path + ": " + p.message for p in info.value.problems]
    assert all(p.mark.line == 4 for p in info.value.problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "block: {type: regnet, group_width: 8}\n",
            "2:23: block.group_width: the regnet generator gives every stage its own group_width, so the network's "
            "group_width is never used; write it in the generator (stages.regnet.group_width)",
        ),
        (
            "groups: 2\n",
            "2:1: groups: the regnet generator gives every stage its own group_width, so the network's groups is "
            "never used; write it in the generator (stages.regnet.group_width)",
        ),
        (
            "bottleneck_ratio: 2\n",
            "2:1: bottleneck_ratio: the regnet generator fits its stages' widths to its own bottleneck_ratio; write "
            "it there (stages.regnet.bottleneck_ratio)",
        ),
    ],
)
def test_a_network_knob_that_the_generator_overrides_points_to_the_generator(write, text, message):
    path = write("mine.yaml", "extends: regnet_x_400mf\n" + text)
    with pytest.raises(archspec.SpecError) as info:
        archspec.load_plan(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:{message}"]


def test_a_network_se_over_a_generator_without_se_ratio_still_applies():
    # RegNetX's stages write no SE of their own, so the network's reaches them (as on any stage list).
    with_se = archspec.count("regnet_x_400mf", overrides=["se={ratio: 0.25, of: input}"])
    assert with_se.params > archspec.count("regnet_x_400mf").params
