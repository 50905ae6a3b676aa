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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from archspec.plan import ops as p


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


def _conv(op: p.Conv, main_path: bool) -> Counts:
    per_output = (op.in_channels // op.groups) * op.kernel * op.kernel
    outputs = op.out_channels * op.out_size[0] * op.out_size[1]
    c = Counts(params=op.out_channels * per_output + (op.out_channels if op.bias else 0))
    c.flops_by_op["conv"] = outputs * per_output
    c.macs = outputs * per_output
    c.activations = outputs
    c.layers = 1 if main_path else 0
    return c


def _norm(op: p.Norm, main_path: bool) -> Counts:
    elements = op.channels * op.size[0] * op.size[1]
    c = Counts(params=2 * op.channels)
    if op.kind == "batch":
        c.flops_by_op["batch_norm"] = 2 * elements
    else:
        c.flops_by_op["group_norm"] = 5 * elements
    return c


def _linear(op: p.Linear, main_path: bool) -> Counts:
    c = Counts(params=op.in_features * op.out_features + (op.out_features if op.bias else 0))
    c.flops_by_op["linear"] = op.in_features * op.out_features
    c.macs = op.in_features * op.out_features
    c.activations = op.out_features
    c.layers = 1
    return c


def _adaptive_avg(channels: int, size: p.Size2) -> Counts:
    c = Counts()
    c.flops_by_op["adaptive_avg_pool2d"] = channels * size[0] * size[1]
    return c


def _adaptive_pool(op: p.AdaptivePool, main_path: bool) -> Counts:
    return _adaptive_avg(op.channels, op.in_size) if op.kind == "avg" else Counts()


def _squeeze_excite(op: p.SqueezeExcite, main_path: bool) -> Counts:
    return _adaptive_avg(op.channels, op.size).add(_conv(op.fc1, False)).add(_conv(op.fc2, False))


def _sequence(op: p.Sequence, main_path: bool) -> Counts:
    return count_ops(op.items, main_path)


def _residual(op: p.Residual, main_path: bool) -> Counts:
    c = count_ops(op.pre + op.body + op.post, main_path)
    if op.shortcut is not None:
        c.add(count_op(op.shortcut, main_path=False))
    return c


def _free(op: p.Op, main_path: bool) -> Counts:
    """Ops that fvcore counts as zero: activations, max and average pooling, flatten, dropout, option A's padding."""
    return Counts()


HANDLERS: dict[type, Callable[..., Counts]] = {
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


def count_op(op: p.Op, main_path: bool = True) -> Counts:
    """Counts for one op of the plan (and everything inside it)."""
    handler = HANDLERS.get(type(op))
    if handler is None:
        raise TypeError(f"the analytic counter has no handler for {type(op).__name__}")
    return handler(op, main_path)


def count_ops(items: Iterable[tuple[str, p.Op]], main_path: bool = True) -> Counts:
    total = Counts()
    for _, op in items:
        total.add(count_op(op, main_path))
    return total


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
    total = count_ops(plan.children)
    sections = {s.name: count_ops(s.ops) for s in plan.sections}
    return Complexity(
        name=plan.spec.name,
        input_size=plan.input_size,
        layers=total.layers,
        params=total.params,
        flops=total.flops,
        flops_by_op=dict(sorted(total.flops_by_op.items())),
        macs=total.macs,
        activations=total.activations,
        params_by_section={k: v.params for k, v in sections.items()},
        flops_by_section={k: v.flops for k, v in sections.items()},
    )
