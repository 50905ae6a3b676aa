"""Analytic complexity: parameters, FLOPs, MACs, activations and depth, read off the plan.

Conventions (stated in every report):
- `flops` follows fvcore's FlopCountAnalysis on one image in eval mode: one fused
  multiply-add is one flop; convs and linear layers count their multiply-adds,
  batch norm two flops per element (scale and shift), group norm five, adaptive average pooling one
  per input element; activations, max pooling, the shortcut add and ops fvcore
  does not know (average pooling, padding, dropout) count zero.
- `macs` are the conv and fully connected multiply-adds only: the convention of
  the ResNet paper's "FLOPs" and of torchvision's published GFLOPS.
- `activations` are the output elements of every conv and fully connected layer
  (fvcore's ActivationCountAnalysis).
- `layers` are the weighted layers on the main path: convs and fully connected
  layers, not shortcut projections or SE units (resnet152 -> 152, vgg19 -> 19).

Each op type's cost is its record in `archspec.plan.records` (as fvcore keeps one handler per
operator); an op type without one is an error at its first use, never a silent zero.

Counting is the inner loop of design-space sampling (`archspec sample`), so the handlers add
plain integers into one running `Tally` instead of building a counter per op, and an op that
appears more than once (the same object: a stage's repeated blocks, or a stage counted for its
section and again for the total) is walked once and its sums reused.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from archspec.plan import ops as p
from archspec.plan.records import ALWAYS_LAYER, FREE, MAIN_PATH_LAYER, OPERATORS, RECORDS, Cost, OpRecord

# The operators whose FLOPs are multiply-adds: the convention of the ResNet paper and of torchvision.
MAC_OPERATORS = ("conv", "linear")
_OPERATOR_INDEX = {name: index for index, name in enumerate(OPERATORS)}
# The counter's table: one record per op type (tests/test_registry.py checks it covers every op).
HANDLERS = RECORDS


@dataclass
class Counts:
    params: int = 0
    flops_by_op: Counter[str] = field(default_factory=Counter)
    macs: int = 0
    activations: int = 0
    layers: int = 0

    @property
    def flops(self) -> int:
        return sum(self.flops_by_op.values())

    def add(self, other: Counts) -> Counts:
        self.params += other.params
        self.flops_by_op.update(other.flops_by_op)
        self.macs += other.macs
        self.activations += other.activations
        self.layers += other.layers
        return self


class Tally:
    """Running sums of one walk over the plan; `memo` holds the sums of the ops already walked, by `memo_key`.

    `sums` and `add_sums` list the fields in one order: params, activations, layers, then `OPERATORS`.
    """

    __slots__ = ("activations", "by_op", "layers", "memo", "params")

    def __init__(self, memo: dict[int, tuple[int, ...]] | None = None):
        self.params = self.activations = self.layers = 0
        self.by_op = [0] * len(OPERATORS)
        self.memo = {} if memo is None else memo

    def sums(self) -> tuple[int, ...]:
        return (self.params, self.activations, self.layers, *self.by_op)

    def add_sums(self, sums: tuple[int, ...], times: int = 1) -> None:
        if times == 1:
            self.params += sums[0]
            self.activations += sums[1]
            self.layers += sums[2]
            self.by_op = list(map(operator.add, self.by_op, sums[3:]))
            return
        self.params += sums[0] * times
        self.activations += sums[1] * times
        self.layers += sums[2] * times
        self.by_op = [mine + value * times for mine, value in zip(self.by_op, sums[3:], strict=True)]

    def add_cost(self, cost: Cost, main_path: bool) -> None:
        self.params += cost.params
        self.activations += cost.activations
        if cost.layer == ALWAYS_LAYER or (cost.layer == MAIN_PATH_LAYER and main_path):
            self.layers += 1
        if cost.flops:
            self.by_op[_OPERATOR_INDEX[cost.operator]] += cost.flops

    def flops_by_op(self) -> dict[str, int]:
        # Every record adds a positive amount, so an operator is present exactly when its sum is.
        return {name: value for name, value in zip(OPERATORS, self.by_op, strict=True) if value}

    @property
    def macs(self) -> int:
        return sum(self.by_op[_OPERATOR_INDEX[name]] for name in MAC_OPERATORS)

    def counts(self) -> Counts:
        return Counts(self.params, Counter(self.flops_by_op()), self.macs, self.activations, self.layers)


def memo_key(op: object, main_path: bool) -> int:
    """One op on one path as a memo key: its id, negated off the main path (ops stay alive while counted)."""
    return id(op) if main_path else -1 - id(op)


def _walk(items: Iterable[tuple[str, p.Op]], main_path: bool, t: Tally) -> None:
    # This loop runs for every op of every plan counted. A stage's repeated blocks are one object standing
    # in a row (the planner reuses it): its sums are added once per run, times its length.
    previous: p.Op | None = None
    repeats = 0
    for _, op in items:
        if op is previous:
            repeats += 1
            continue
        if repeats:
            t.add_sums(t.memo[memo_key(previous, main_path)], repeats)
            repeats = 0
        entry = RECORDS.get(type(op))
        if entry is None:
            raise _no_handler(op)
        if entry.cost is not None:
            cost = entry.cost(op)
            if cost is not FREE:
                t.add_cost(cost, main_path)
            previous = None
        else:
            _composite(op, entry, main_path, t)
            previous = op if type(op) is p.Residual else None
    if repeats:
        t.add_sums(t.memo[memo_key(previous, main_path)], repeats)


def _composite(op: p.Op, entry: OpRecord, main_path: bool, t: Tally) -> None:
    # A composite met again in the same walk (ops are immutable, so it is the same one) adds the sums of
    # its first walk. Its side-path children (a shortcut, a squeeze path) are counted off the main path.
    key = memo_key(op, main_path)
    sums = t.memo.get(key)
    if sums is None and type(op) is p.Sequence:
        _walk(op.items, main_path, t)  # a plain sequence met once adds straight into the running tally
        return
    if sums is None:
        block = type(op) is p.Residual
        if block:
            kept = _BLOCK_SUMS.get(key)
            if kept is not None and kept[0] is op:
                sums = t.memo[key] = kept[1]
                t.add_sums(sums)
                return
        inner = Tally(t.memo)
        side = entry.side_path(op)
        if not side or not main_path:
            _walk(p.children(op), main_path, inner)
        else:
            for name, child in p.children(op):
                add_op(child, main_path and name not in side, inner)
        sums = t.memo[key] = inner.sums()
        if block:
            if len(_BLOCK_SUMS) >= _KEPT_BLOCKS:
                _BLOCK_SUMS.clear()
            _BLOCK_SUMS[key] = (op, sums)
    t.add_sums(sums)


# The sums of the residual blocks counted lately, by `memo_key`, each with its block, which keeps the block alive
# and so its id its own: the planner reuses a block planned before from the same arguments (design-space sampling
# plans thousands of networks that share most of their blocks), and a block it reuses is counted once.
_BLOCK_SUMS: dict[int, tuple[p.Op, tuple[int, ...]]] = {}
_KEPT_BLOCKS = 2048


def forget_block_sums() -> None:
    """Empty the kept sums of the blocks counted lately: the next blocks are all walked afresh."""
    _BLOCK_SUMS.clear()


def add_op(op: p.Op, main_path: bool, t: Tally) -> None:
    """Add one op of the plan (and everything inside it) to a running tally."""
    entry = RECORDS.get(type(op))
    if entry is None:
        raise _no_handler(op)
    if entry.cost is None:
        _composite(op, entry, main_path, t)
        return
    cost = entry.cost(op)
    if cost is not FREE:
        t.add_cost(cost, main_path)


def _no_handler(op: object) -> TypeError:
    return TypeError(f"the analytic counter has no handler for {type(op).__name__}")


def count_op(op: p.Op, main_path: bool = True) -> Counts:
    """Counts for one op of the plan (and everything inside it)."""
    t = Tally()
    add_op(op, main_path, t)
    return t.counts()


def count_ops(items: Iterable[tuple[str, p.Op]], main_path: bool = True) -> Counts:
    t = Tally()
    _walk(items, main_path, t)
    return t.counts()


@dataclass(frozen=True)
class Complexity:
    """Everything `archspec flops` reports for one spec at one input size."""

    name: str
    input_size: p.Size2
    layers: int
    params: int
    flops: int
    flops_by_op: dict[str, int]
    macs: int
    activations: int
    params_by_section: dict[str, int]
    flops_by_section: dict[str, int]


def totals(plan: p.Plan) -> tuple[int, int, int, int, int]:
    """(params, flops, macs, activations, layers) of a whole plan, as `complexity` counts them, without its
    breakdowns by section: what design-space sampling asks of each of the thousands of plans it counts."""
    t = Tally()
    _walk(plan.children, True, t)
    return t.params, sum(t.by_op), t.macs, t.activations, t.layers


def complexity(plan: p.Plan) -> Complexity:
    """Counts for a whole plan, with per-section (stem, stages, head) breakdowns."""
    # The sections hold the same ops as the plan's children (a stage's sequence is a child, or inside one):
    # the sums of each section's ops, kept in the memo, make the walk over the children a short one.
    memo: dict[int, tuple[int, ...]] = {}
    sections = {}
    for section in plan.sections:
        t = Tally(memo)
        for _, op in section.ops:
            if type(op) not in (p.Sequence, p.Residual):
                add_op(op, True, t)  # a leaf: nothing below it to walk again
                continue
            part = Tally(memo)
            add_op(op, True, part)
            sums = memo[memo_key(op, True)] = part.sums()
            t.add_sums(sums)
        sections[section.name] = t
    total = Tally(memo)
    _walk(plan.children, True, total)
    flops_by_op = total.flops_by_op()
    return Complexity(
        name=plan.spec.name,
        input_size=plan.input_size,
        layers=total.layers,
        params=total.params,
        flops=sum(flops_by_op.values()),
        flops_by_op=flops_by_op,
        macs=total.macs,
        activations=total.activations,
        params_by_section={k: v.params for k, v in sections.items()},
        flops_by_section={k: sum(v.by_op) for k, v in sections.items()},
    )
