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

One handler per op type (`HANDLERS`), as fvcore keeps one per operator; an op
type without a handler is an error at its first use, never a silent zero.

Counting is the inner loop of design-space sampling (`archspec sample`), so the handlers add
plain integers into one running `Tally` instead of building a counter per op, and an op that
appears more than once (the same object: a stage's repeated blocks, or a stage counted for its
section and again for the total) is walked once and its sums reused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from archspec.plan import ops as p

# fvcore's operator names, in the order `flops_by_op` lists them.
OPERATORS = ("adaptive_avg_pool2d", "batch_norm", "conv", "group_norm", "linear")


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

    __slots__ = ("memo", "params", "activations", "layers", *OPERATORS)

    def __init__(self, memo: dict[int, tuple[int, ...]] | None = None):
        self.params = self.activations = self.layers = 0
        self.adaptive_avg_pool2d = self.batch_norm = self.conv = self.group_norm = self.linear = 0
        self.memo = {} if memo is None else memo

    def sums(self) -> tuple[int, ...]:
        return (
            self.params,
            self.activations,
            self.layers,
            self.adaptive_avg_pool2d,
            self.batch_norm,
            self.conv,
            self.group_norm,
            self.linear,
        )

    def add_sums(self, sums: tuple[int, ...], times: int = 1) -> None:
        self.params += sums[0] * times
        self.activations += sums[1] * times
        self.layers += sums[2] * times
        self.adaptive_avg_pool2d += sums[3] * times
        self.batch_norm += sums[4] * times
        self.conv += sums[5] * times
        self.group_norm += sums[6] * times
        self.linear += sums[7] * times

    def flops_by_op(self) -> dict[str, int]:
        # Every handler adds a positive amount, so an operator is present exactly when its sum is.
        return {name: getattr(self, name) for name in OPERATORS if getattr(self, name)}

    def counts(self) -> Counts:
        return Counts(self.params, Counter(self.flops_by_op()), self.conv + self.linear, self.activations, self.layers)


def _conv(op: p.Conv, main_path: bool, t: Tally) -> None:
    per_output = (op.in_channels // op.groups) * op.kernel * op.kernel
    outputs = op.out_channels * op.out_size[0] * op.out_size[1]
    t.params += op.out_channels * per_output + (op.out_channels if op.bias else 0)
    t.conv += outputs * per_output
    t.activations += outputs
    if main_path:
        t.layers += 1


def _norm(op: p.Norm, main_path: bool, t: Tally) -> None:
    elements = op.channels * op.size[0] * op.size[1]
    t.params += 2 * op.channels
    if op.kind == "batch":
        t.batch_norm += 2 * elements
    else:
        t.group_norm += 5 * elements


def _linear(op: p.Linear, main_path: bool, t: Tally) -> None:
    t.params += op.in_features * op.out_features + (op.out_features if op.bias else 0)
    t.linear += op.in_features * op.out_features
    t.activations += op.out_features
    t.layers += 1


def _adaptive_pool(op: p.AdaptivePool, main_path: bool, t: Tally) -> None:
    if op.kind == "avg":
        t.adaptive_avg_pool2d += op.channels * op.in_size[0] * op.in_size[1]


def _squeeze_excite(op: p.SqueezeExcite, main_path: bool, t: Tally) -> None:
    t.adaptive_avg_pool2d += op.channels * op.size[0] * op.size[1]
    _conv(op.fc1, False, t)
    _conv(op.fc2, False, t)


def memo_key(op: object, main_path: bool) -> int:
    """One op on one path as a memo key: its id, negated off the main path (ops stay alive while counted)."""
    return id(op) if main_path else -1 - id(op)


def _walk(items: Iterable[tuple[str, p.Op]], main_path: bool, t: Tally) -> None:
    # `add_op` inlined: this loop runs for every op of every plan counted. A stage's repeated blocks are
    # one object standing in a row (the planner reuses it): its sums are added once per run, times its length.
    previous: p.Op | None = None
    repeats = 0
    for _, op in items:
        if op is previous:
            repeats += 1
            continue
        if repeats:
            t.add_sums(t.memo[memo_key(previous, main_path)], repeats)
            repeats = 0
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise _no_handler(op)
        if handler is not _free:
            handler(op, main_path, t)
        previous = op if handler is _residual else None
    if repeats:
        t.add_sums(t.memo[memo_key(previous, main_path)], repeats)


def _sequence(op: p.Sequence, main_path: bool, t: Tally) -> None:
    sums = t.memo.get(id(op) if main_path else -1 - id(op))
    if sums is None:
        _walk(op.items, main_path, t)
    else:
        t.add_sums(sums)


def _residual(op: p.Residual, main_path: bool, t: Tally) -> None:
    # A block met again in the same walk (ops are immutable, so it is the same block) adds the sums
    # of its first walk.
    key = id(op) if main_path else -1 - id(op)
    sums = t.memo.get(key)
    if sums is None:
        block = Tally(t.memo)
        _walk(op.pre, main_path, block)
        _walk(op.body, main_path, block)
        _walk(op.post, main_path, block)
        if op.shortcut is not None:
            add_op(op.shortcut, False, block)
        sums = t.memo[key] = block.sums()
    t.add_sums(sums)


def _free(op: p.Op, main_path: bool, t: Tally) -> None:
    """Ops that fvcore counts as zero: activations, max and average pooling, flatten, dropout, option A's padding."""


HANDLERS: dict[type, Callable[..., None]] = {
    p.Conv: _conv,
    p.Norm: _norm,
    p.Linear: _linear,
    p.AdaptivePool: _adaptive_pool,
    p.SqueezeExcite: _squeeze_excite,
    p.Sequence: _sequence,
    p.Residual: _residual,
    p.Act: _free,
    p.MaxPool: _free,
    p.AvgPool: _free,
    p.Identity: _free,
    p.Flatten: _free,
    p.Dropout: _free,
    p.ZeroPadShortcut: _free,
}


def add_op(op: p.Op, main_path: bool, t: Tally) -> None:
    """Add one op of the plan (and everything inside it) to a running tally."""
    handler = HANDLERS.get(type(op))
    if handler is None:
        raise _no_handler(op)
    handler(op, main_path, t)


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
        macs=total.conv + total.linear,
        activations=total.activations,
        params_by_section={k: v.params for k, v in sections.items()},
        flops_by_section={k: sum(v.flops_by_op().values()) for k, v in sections.items()},
    )
