"""Planning reuses a residual block made before from the same arguments, and counting the sums of a block it
has counted, across networks (design-space sampling plans thousands that share most of their blocks): a
network planned and counted after others must be the one planned and counted first, field for field."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import ROOT

from archspec.counting.analytic import Complexity, complexity, forget_block_sums
from archspec.lang.yamldoc import from_mapping
from archspec.plan.blocks.base import forget_reused_blocks
from archspec.plan.load import load_plan, plan_document
from archspec.plan.ops import Plan, Residual, Sequence
from archspec.space.draw import draw
from archspec.space.load import load_space

# Variants of one network that differ in what a block is made from: its knobs, the network's norm, its
# dilation, its drop-path rate, its widths; each planned after the others must not take their blocks.
VARIANTS = [
    [],
    ["drop_path=0.1"],
    ["drop_path=0.2"],
    ["norm=group", "norm_groups=8"],
    ["norm=group", "norm_groups=4"],
    ["output_stride=16"],
    ["output_stride=8"],
    ["groups=32", "width_per_group=4"],
    ["stride_in=1x1"],
    ["avg_down=true"],
    ["shortcut=C"],
    ["preact=true"],
    ["se={reduction: 16}"],
    ["se={reduction: 8}"],
    ["stages.1.width=96"],
    ["input.size=160"],
]


def _fresh(make: Callable[[], Plan]) -> tuple[Plan, Complexity]:
    """The plan and counts of a network planned with nothing to reuse."""
    forget_reused_blocks()
    forget_block_sums()
    plan = make()
    return plan, complexity(plan)


def _same(a: tuple[Plan, Complexity], b: tuple[Plan, Complexity]) -> None:
    (plan_a, counts_a), (plan_b, counts_b) = a, b
    assert plan_a.children == plan_b.children
    assert plan_a.sections == plan_b.sections
    assert counts_a == counts_b


def _blocks(plan: Plan) -> set[int]:
    """The ids of a network's residual blocks (each stage's blocks are a sequence, in both layouts sampled here)."""
    return {
        id(op)
        for section in plan.sections
        for _, stage in section.ops
        if isinstance(stage, Sequence)
        for _, op in stage.items
        if isinstance(op, Residual)
    }


@pytest.mark.parametrize("base", ["resnet50", "resnext50_32x4d", "regnet_y_400mf"])
def test_a_variant_planned_after_the_others_is_the_variant_planned_alone(base):
    makers = [lambda overrides=overrides: load_plan(base, overrides=overrides) for overrides in VARIANTS]
    if base == "regnet_y_400mf":  # knobs RegNet's blocks do not take
        makers = [make for make, overrides in zip(makers, VARIANTS, strict=True) if not _resnet_only(overrides)]
    forget_reused_blocks()
    forget_block_sums()
    warm = []
    for make in makers + makers:  # the second round finds every block made in the first
        plan = make()
        warm.append((plan, complexity(plan)))
    for i, make in enumerate(makers):
        _same(warm[len(makers) + i], _fresh(make))


def _resnet_only(overrides: list[str]) -> bool:
    # RegNetY's generator gives each stage its own se (se_ratio): a network se is refused there.
    return any(o.split("=")[0] in ("groups", "width_per_group", "preact", "stages.1.width", "se") for o in overrides)


@pytest.mark.parametrize("space_file", ["benchmarks/resnet50_space.yaml", "specs/spaces/regnetx.yaml"])
def test_drawn_networks_planned_in_a_row_are_the_networks_planned_alone(space_file):
    space = load_space(str(ROOT / space_file))
    docs = [from_mapping(draw(space, 5, index).data, source="<draw>") for index in range(40)]
    forget_reused_blocks()
    forget_block_sums()
    warm = [(plan := plan_document(doc), complexity(plan)) for doc in docs]
    # The row did reuse blocks: some block stands in two networks.
    seen: set[int] = set()
    shared = False
    for plan, _ in warm:
        blocks = _blocks(plan)
        shared = shared or bool(blocks & seen)
        seen |= blocks
    assert shared
    for doc, got in zip(docs, warm, strict=True):
        _same(got, _fresh(lambda doc=doc: plan_document(doc)))
