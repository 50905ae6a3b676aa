"""The ConvNeXt roadmap (Liu et al. 2022, Section 2 and Figure 2): specs/roadmap/convnext/ walks from ResNet-50 to
ConvNeXt-T one change per spec, ends at torchvision's convnext_tiny, counts as the paper's figure rounds and as
fvcore counts, and the `convnext` knobs that express the steps refuse what cannot work, at the file's line."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
import yaml
from conftest import ROOT
from test_convnext import _fvcore_by_module

import archspec
from archspec.counting.analytic import complexity
from archspec.counting.modules import module_counts
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.plan import load_plan
from archspec.plan.ops import LayerNorm
from archspec.plan.tensors import state_shapes
from archspec.tools.flops import diff_plans
from archspec.tools.roadmap import CONVNEXT_FIGURE_2

FOLDER = ROOT / "specs" / "roadmap" / "convnext"
STEPS = [name for name, _, _ in CONVNEXT_FIGURE_2]
# What each step changes in the resolved spec, as `archspec diff` names the fields: one concern each.
CHANGES = {
    "00_training_recipe": {"drop_path"},
    "01_stage_ratio": {"stages.1.depth", "stages.2.depth"},
    "02_patchify": {"stem.type", "stem.patch", "stem.norm"},
    "03_depthwise": {"group_width", "groups"},
    "04_width": {"stem.width", "stages.0.width", "stages.1.width", "stages.2.width", "stages.3.width"},
    "05_inverted_bottleneck": {
        "block.type",
        "block.depthwise",
        "block.kernel",
        "block.activation",
        "block.activations",
        "block.norm",
        "block.norms",
        "block.downsample",
        "group_width",  # the depthwise 3x3 of step 3, now the convnext block's own
        "groups",
    },
    "06_depthwise_up": {"block.depthwise"},
    "07_kernel7": {"block.kernel"},
    "08_gelu": {"block.activation"},
    "09_fewer_activations": {"block.activations"},
    "10_fewer_norms": {"block.norms"},
    "11_layer_norm": {"block.norm"},
    "12_downsampling_layers": {"block.downsample", "stem.norm"},
}
# Where archspec's count, rounded to the paper's one decimal, is not Figure 2's figure (docs/paper.md says why).
MACS_ROUND_OTHERWISE = {
    "03_depthwise",
    "07_kernel7",
    "08_gelu",
    "09_fewer_activations",
    "10_fewer_norms",
    "11_layer_norm",
}
FLOPS_ROUND_OTHERWISE = {"05_inverted_bottleneck"}


def _path(step: str) -> str:
    return str(FOLDER / f"{step}.yaml")


def test_the_folder_holds_one_spec_per_step_of_figure_2():
    assert sorted(path.stem for path in FOLDER.glob("*.yaml")) == STEPS == list(CHANGES)


def test_each_step_extends_the_one_before_from_resnet50():
    parents = [yaml.safe_load((FOLDER / f"{step}.yaml").read_text())["extends"] for step in STEPS]
    assert parents == ["resnet50"] + [f"{step}.yaml" for step in STEPS[:-1]]


@pytest.mark.parametrize("index", range(len(STEPS)), ids=STEPS)
def test_each_step_changes_one_concern_of_the_resolved_spec(index):
    before = "resnet50" if index == 0 else _path(STEPS[index - 1])
    diff = diff_plans(load_plan(before), load_plan(_path(STEPS[index])), before, STEPS[index])
    assert {change.field for change in diff.changes} == CHANGES[STEPS[index]]


def test_the_last_step_is_torchvisions_convnext_tiny():
    ours, stock = load_plan(_path(STEPS[-1])), load_plan("convnext_tiny")
    assert ours.family == stock.family == "convnext"
    assert ours.children == stock.children
    assert state_shapes(ours) == state_shapes(stock)
    a, b = complexity(ours), complexity(stock)
    assert (a.params, a.flops_by_op, a.macs, a.activations) == (b.params, b.flops_by_op, b.macs, b.activations)
    assert module_counts(ours) == module_counts(stock)
    meta = torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.meta
    assert a.params == meta["num_params"] == 28_589_128
    assert round(a.macs / 1e9, 3) == meta["_ops"]
    assert round(a.macs / 1e9, 1) == 4.5  # the paper's Table 1: ConvNeXt-T, 4.5G


def test_the_first_step_is_resnet50_with_stochastic_depth():
    ours, stock = load_plan(_path(STEPS[0])), load_plan("resnet50")
    assert state_shapes(ours) == state_shapes(stock)
    assert complexity(ours).flops_by_op == complexity(stock).flops_by_op
    assert ours.spec.drop_path == 0.1


@pytest.mark.parametrize(("step", "label", "figure"), CONVNEXT_FIGURE_2, ids=STEPS)
def test_the_counts_round_to_figure_2_where_the_docs_say_they_do(step, label, figure):
    counts = complexity(load_plan(_path(step)))
    assert (round(counts.macs / 1e9, 1) == figure) is (step not in MACS_ROUND_OTHERWISE)
    assert (round(counts.flops / 1e9, 1) == figure) is (step not in FLOPS_ROUND_OTHERWISE)
    # Where one convention rounds otherwise, the other gives the paper's figure, and the gap is under 0.1 G.
    assert abs(counts.macs / 1e9 - figure) < 0.1


def test_the_steps_before_the_downsampling_layers_are_laid_out_as_resnets():
    for step in STEPS[:-1]:
        plan = load_plan(_path(step))
        assert plan.family == "resnet", step
        assert "fc.weight" in state_shapes(plan), step
    plan = load_plan(_path("05_inverted_bottleneck"))
    shapes = state_shapes(plan)
    # The first block of stage 2 strides in its depthwise 3x3 and projects its shortcut (1x1 conv, batch norm).
    assert shapes["layer2.0.block.0.weight"] == (768, 96, 1, 1)  # 1x1 up to 4 x 192
    assert shapes["layer2.0.block.3.weight"] == (768, 1, 3, 3)  # depthwise
    assert shapes["layer2.0.block.6.weight"] == (192, 768, 1, 1)
    assert shapes["layer2.0.downsample.0.weight"] == (192, 96, 1, 1)
    assert "layer2.0.downsample.1.running_mean" in shapes
    assert "layer2.0.block.0.bias" not in shapes  # a conv that a batch norm follows has no bias
    assert "layer1.0.downsample.0.weight" not in shapes  # the stem already gives stage 1 its width
    assert plan.sections[2].out_size == (28, 28)
    head = dict(load_plan(_path(STEPS[-1])).children)["classifier"]
    assert isinstance(dict(head.items)["0"], LayerNorm)


def test_a_step_with_batch_norm_and_resnet_downsampling_counts_as_fvcore_and_runs():
    # Two blocks in the third stage (a projection-shortcut block, then an identity one) and one in each other
    # keep every shape of block the step has, at a tenth of its cost.
    path, size = _path("05_inverted_bottleneck"), (97, 75)
    short = ["stages.0.depth=1", "stages.1.depth=1", "stages.2.depth=2", "stages.3.depth=1"]
    plan = load_plan(path, input_size=size, overrides=short)
    analytic, reference = complexity(plan), fvcore_complexity(plan)
    assert analytic.flops_by_op == reference.flops_by_op
    assert (analytic.params, analytic.activations) == (reference.params, reference.activations)
    assert set(analytic.flops_by_op) == {"adaptive_avg_pool2d", "batch_norm", "conv", "linear"}
    torch.manual_seed(0)
    model = archspec.build(path, input_size=size, device="cpu", overrides=short)
    expected = _fvcore_by_module(plan, model)
    rows = module_counts(plan)
    assert {row.module: (row.params, row.flops) for row in rows} == expected
    model.train()
    out = model(torch.randn(2, 3, *size))
    out.sum().backward()
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_every_step_counts_equal_fvcore_at_three_sizes_and_by_module(step):
    for size in (None, (193, 161), (96, 96)):
        plan = load_plan(_path(step), input_size=size)
        analytic, reference = complexity(plan), fvcore_complexity(plan)
        assert analytic.flops_by_op == reference.flops_by_op, size
        assert (analytic.params, analytic.activations) == (reference.params, reference.activations), size
    plan = load_plan(_path(step), input_size=64)
    model = archspec.build(_path(step), input_size=64, device="cpu")
    rows = module_counts(plan)
    assert {row.module: (row.params, row.flops) for row in rows} == _fvcore_by_module(plan, model)


def test_extends_chains_resolve_from_any_working_directory(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = cli("validate", _path(STEPS[-1]))
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(ROOT / "specs")
    result = cli("validate", f"roadmap/convnext/{STEPS[-1]}.yaml")
    assert result.exit_code == 0, result.output
    assert "28,589,128 parameters" in result.stdout


def test_extends_merges_an_index_map_into_the_stages_and_replaces_them_with_a_list(write):
    parent = _path("01_stage_ratio")
    indexed = archspec.load_spec(write("a.yaml", f"extends: {parent}\nstages:\n  3: {{depth: 2}}\n"))
    assert [(s.depth, s.width) for s in indexed.stages] == [(3, 64), (3, 128), (9, 256), (2, 512)]
    listed = archspec.load_spec(write("b.yaml", f"extends: {parent}\nstages:\n  - {{depth: 2, width: 32}}\n"))
    assert [(s.depth, s.width) for s in listed.stages] == [(2, 32)]


def test_a_resnet_with_a_resnet_style_convnext_stage_plans_as_a_resnet(write):
    text = "extends: resnet50\nstages:\n  3: {block: {type: convnext, downsample: block, norm: batch, norms: each}}\n"
    plan = load_plan(write("hybrid.yaml", text))
    shapes = state_shapes(plan)
    assert plan.family == "resnet"
    assert shapes["layer4.0.downsample.0.weight"] == (512, 1024, 1, 1)
    assert shapes["layer4.0.block.0.weight"] == (1024, 1, 7, 7)  # depthwise first, on the stage's input
    assert shapes["layer4.1.block.0.weight"] == (512, 1, 7, 7)


def test_convnext_defaults_are_the_stock_convnext_and_written_out_change_nothing(write):
    text = (
        "extends: convnext_tiny\nblock: {type: convnext, depthwise: first, norm: layer, norms: one, activation: gelu, "
        "activations: one, downsample: layer, layer_scale: 1.0e-6}\nstem: {norm: layer}\n"
    )
    assert load_plan(write("explicit.yaml", text)).children == load_plan("convnext_tiny").children


def test_a_network_that_writes_its_activation_sets_the_convnext_blocks(write):
    plan = load_plan(write("relu.yaml", "extends: convnext_tiny\nactivation: relu\n"))
    stock = load_plan("convnext_tiny")
    assert plan.children != stock.children
    assert "'relu'" in repr(plan.children) and "'gelu'" not in repr(plan.children)


def test_without_layer_scale_a_block_has_no_scale_parameter(write):
    plan = load_plan(write("no_scale.yaml", "extends: convnext_tiny\nblock: {type: convnext, layer_scale: null}\n"))
    keys = list(state_shapes(plan))
    assert not any(key.endswith("layer_scale") for key in keys)
    # One scale per channel of every block: 3 x 96 + 3 x 192 + 9 x 384 + 3 x 768.
    assert complexity(plan).params == 28_589_128 - 6_624


@pytest.mark.parametrize(
    ("parent", "text", "where", "message"),
    [
        (
            "11_layer_norm",
            "block: {norm: batch, downsample: layer}\n",
            "bad.yaml:2:34: block.downsample:",
            "a downsampling layer of its own normalizes with layer norm",
        ),
        (
            "09_fewer_activations",
            "stages:\n  2: {block: {type: convnext, downsample: layer}}\n",
            "bad.yaml:3:43: stages.2.block.downsample:",
            "blocks with norm: batch change shape ResNet's way (downsample: block)",
        ),
        (
            "11_layer_norm",
            "block: {activations: some}\n",
            "bad.yaml:2:22: block.activations:",
            "expected one of 'one' or 'each'",
        ),
        ("11_layer_norm", "block: {depthwise: last}\n", "bad.yaml:2:20: block.depthwise:", "'first' or 'middle'"),
        ("11_layer_norm", "block: {layer_scale: 0}\n", "bad.yaml:2:22: block.layer_scale:", "greater than 0"),
        ("11_layer_norm", "output_stride: 16\n", "bad.yaml:2:16: output_stride:", "convnext stages keep their stride"),
        ("resnet50", "stem: {norm: batch}\n", "bad.yaml:2:8: stem.norm:", "a stem of type imagenet takes no norm"),
        (
            "resnet50",
            "block: {type: bottleneck, norms: one}\n",
            "bad.yaml:2:27: block.norms:",
            "",
        ),
    ],
)
def test_bad_knob_combinations_are_located_errors(write, cli, parent, text, where, message):
    path = write("bad.yaml", f"extends: {parent if parent == 'resnet50' else _path(parent)}\n{text}")
    result = cli("validate", str(path))
    assert result.exit_code == 1, result.output
    assert where in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_paper_convnext_prints_every_step_as_a_table_and_as_json(cli):
    table = cli("paper", "convnext")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) == 2 + len(STEPS)
    assert lines[-1].split()[:1] == ["12_downsampling_layers"] and "28,589,128" in lines[-1]
    assert "MACs round to 2.3" in lines[2 + STEPS.index("03_depthwise")]
    steps = json.loads(cli("paper", "convnext", "--format", "json").stdout)
    assert [step["step"] for step in steps] == STEPS
    assert [step["paper_gflops"] for step in steps] == [figure for _, _, figure in CONVNEXT_FIGURE_2]
    assert steps[-1]["params"] == 28_589_128


def test_paper_takes_a_format_only_with_a_table(cli):
    result = cli("paper", "--format", "json")
    assert result.exit_code == 2
    assert "--format json: format: applies to a TABLE" in result.stderr


def test_paper_convnext_as_csv_gives_plain_numbers(cli):
    result = cli("paper", "convnext", "--format", "csv")
    assert result.exit_code == 0, result.output
    header, first, *_ = result.stdout.splitlines()
    assert header == "step,paper's change,params,GMACs,GFLOPs,paper,differs from the paper"
    assert first.split(",")[:3] == ["00_training_recipe", "ResNet-50", "25557032"]  # torchvision's resnet50
