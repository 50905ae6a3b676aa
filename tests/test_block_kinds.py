"""Each block kind's own parameters: `block:` as a kind's name or as its mapping, merged generically over the
network's flat knobs, with a knob the kind does not take named at its line along with the kinds that take it."""

from __future__ import annotations

from dataclasses import replace

import pytest

import archspec
from archspec.plan import load_plan
from archspec.plan.ops import children
from archspec.plan.tensors import state_shapes


def _op(plan, path: str):
    """The op at a module path of the plan (`layer4.0.conv2`)."""
    items = plan.children
    op = None
    for name in path.split("."):
        op = dict(items)[name]
        items = children(op)
    return op


def _same_network(a, b) -> None:
    plan_a, plan_b = load_plan(a), load_plan(b)
    assert state_shapes(plan_a) == state_shapes(plan_b)
    assert replace(archspec.count(a), name="") == replace(archspec.count(b), name="")


def test_a_network_block_mapping_is_the_flat_knobs_written_in_the_kinds_own_place(write):
    mapping = write("m.yaml", "extends: resnet50\nname: m\nblock: {type: bottleneck, groups: 32, width_per_group: 4}\n")
    flat = write("f.yaml", "extends: resnet50\nname: m\ngroups: 32\nwidth_per_group: 4\n")
    _same_network(mapping, flat)
    _same_network(mapping, "resnext50_32x4d")


def test_a_stage_mapping_overrides_the_networks_knobs_for_that_stage_only(write):
    mapping = write(
        "m.yaml", "extends: resnet50\nstages:\n  3: {block: {type: bottleneck, groups: 32, width_per_group: 4}}\n"
    )
    flat = write("f.yaml", "extends: resnet50\nstages:\n  3: {groups: 32, width_per_group: 4}\n")
    assert state_shapes(load_plan(mapping)) == state_shapes(load_plan(flat))
    plan = load_plan(mapping)
    assert _op(plan, "layer4.0.conv2").groups == 32
    assert _op(plan, "layer3.0.conv2").groups == 1


def test_a_stage_mapping_sets_over_a_network_mapping_field_by_field(write):
    spec = write(
        "s.yaml",
        "extends: resnet50\nblock: {type: bottleneck, groups: 8, width_per_group: 16}\n"
        "stages:\n  0: {block: {type: bottleneck, width_per_group: 8}}\n",
    )
    plan = load_plan(spec)
    assert _op(plan, "layer1.0.conv2").groups == 8
    assert _op(plan, "layer1.0.conv1").out_channels == 64 * 8 // 64 * 8
    assert _op(plan, "layer2.0.conv2").groups == 8
    assert _op(plan, "layer2.0.conv1").out_channels == 128 * 16 // 64 * 8


def test_group_width_in_a_stage_mapping_replaces_the_networks_groups_as_a_pair(write):
    spec = write(
        "s.yaml",
        "extends: resnet50\ngroups: 32\nwidth_per_group: 4\n"
        "stages:\n  1: {block: {type: bottleneck, group_width: 8}}\n",
    )
    plan = load_plan(spec)
    # Stage 2's inner width is 128 x 4 / 64 x 1 = 8 (groups replaced too), in one group of 8.
    assert _op(plan, "layer2.0.conv2").groups == 1
    assert _op(plan, "layer2.0.conv2").in_channels == 8
    assert _op(plan, "layer1.0.conv2").groups == 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "block: {type: basic, groups: 2}\nstages:\n  - {depth: 1, width: 8}\n",
            "1:22: block.groups: groups shapes bottleneck and regnet blocks only, not basic",
        ),
        (
            "stages:\n  - {depth: 1, width: 8, block: {type: vgg, se: {}}}\n",
            "2:45: stages.0.block.se: se shapes basic, bottleneck, plain and regnet blocks only, not vgg",
        ),
        (
            "block: {type: convnxt}\nstages:\n  - {depth: 1, width: 8}\n",
            "1:8: block: got the text 'convnxt' for `type`; expected one of 'basic', 'bottleneck', 'plain', 'vgg'",
        ),
        (
            "block: {groups: 2}\nstages:\n  - {depth: 1, width: 8}\n",
            "1:8: block: expected a block kind's name or a mapping with its `type`",
        ),
        (
            "stages:\n  - {depth: 1, width: 8, block: {type: bottleneck, groups: 2, group_width: 4}}\n",
            "stages.0.block.group_width: group_width and groups are exclusive",
        ),
        (
            "stages:\n  - {depth: 1, width: 8, block: basic, width_per_group: 4}\n",
            "stages.0.width_per_group: width_per_group shapes bottleneck blocks only; stage 1 has basic blocks",
        ),
    ],
)
def test_a_knob_the_kind_does_not_take_is_a_located_error_naming_the_kinds_that_do(write, cli, text, message):
    path = write("bad.yaml", text)
    result = cli("validate", str(path))
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert lines[0].startswith(str(path)), lines


def test_diff_compares_a_kinds_name_with_another_kinds_mapping_field_by_field(cli):
    lines = cli("diff", "resnet50", "convnext_tiny").stdout.splitlines()
    assert "  block.type: bottleneck -> convnext" in lines
    assert "  block.kernel: (unset) -> 7" in lines
    assert not any(line.startswith("  block: ") for line in lines)
    lines = cli("diff", "efficientnet_b0", "mobilenet_v2").stdout.splitlines()
    assert "  stages.0.block.type: mbconv -> inverted_residual" in lines
    # Two names stay one change.
    assert "  block: basic -> bottleneck" in cli("diff", "resnet18", "resnet50").stdout.splitlines()


def test_a_space_draws_the_fields_of_a_kinds_mapping_and_extends_specs_written_with_one(write, cli, tmp_path):
    """efficientnet_b0's stages carry `block: {type: mbconv, ...}` mappings: a space over it keeps them, and a
    stage's mapping may hold distributions of the kind's own parameters."""
    space = write(
        "space.yaml",
        "name: mb\nextends: efficientnet_b0\ninput: {size: 32}\nstages:\n  0: {depth: {range: [1, 2]}}\n"
        "  2: {block: {type: mbconv, kernel: {choice: [3, 5]}, expand_ratio: {choice: [4, 6]}}}\n",
    )
    result = cli("sample", space, "-n", "4", "--seed", "0", "--out", tmp_path / "drawn")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "drawn" / "samples.csv").read_text().splitlines()
    assert rows[0].startswith("name,file,draw,stages.0.depth,stages.2.block.kernel,stages.2.block.expand_ratio,")
    drawn = {tuple(row.split(",")[3:6]) for row in rows[1:]}
    assert len(drawn) == 4 and all(k in ("3", "5") and e in ("4", "6") for _, k, e in drawn)
    for row in rows[1:]:
        name, _, _, depth, kernel, expand = row.split(",")[:6]
        plan = load_plan(str(tmp_path / "drawn" / f"{name}.yaml"))
        assert plan.stages[0].depth == int(depth)
        params = plan.stages[2].block
        assert not isinstance(params, str)
        assert (params.type, params.kernel, params.expand_ratio) == ("mbconv", int(kernel), float(expand))
    for stock in ("convnext_tiny", "mobilenet_v2"):
        space = write(f"{stock}-space.yaml", f"name: s\nextends: {stock}\nstages:\n  1: {{depth: {{range: [1, 3]}}}}\n")
        result = cli("sample", space, "-n", "2", "--seed", "0", "--out", tmp_path / stock)
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "extends: resnet50\nstages:\n  0: {block: convnext}\n",
            "block: bottleneck stages cannot follow convnext stages (the first stage's kind sets the module layout); "
            "convnext stages may follow bottleneck stages",
        ),
        (
            "extends: convnext_tiny\nstages:\n  3: {block: bottleneck}\n",
            "3:7: stages.3.block: bottleneck stages cannot follow convnext stages",
        ),
    ],
)
def test_a_kind_that_may_only_follow_another_says_which_order_works(write, cli, text, message):
    result = cli("validate", write("bad.yaml", text))
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert message in result.stderr, result.stderr
