"""What the torch-free side knows of each op type, in one record per type: its cost, its memory, its state_dict.

A leaf op's record gives its cost (parameters, output elements, whether it is a weighted layer, and the
FLOPs of the one fvcore operator it runs), the feature maps it touches (for the memory guard) and the
tensors its module registers, in order. A composite op (a sequence, a residual block, squeeze-excite)
is the sum of its children (`ops.children`), with what it adds itself. The analytic counter
(`archspec.counting.analytic`), the memory estimate (`archspec.counting.memory`) and the state_dict
layout (`archspec.plan.tensors`) read these records and nothing else, so a new op is one record here
and one builder handler (`archspec.nn.builder`); an op type without a record is an error at its first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from archspec.plan import ops as p

Shape = tuple[int, ...]
Entries = Iterator[tuple[str, Shape]]
# Whether an op counts as one of the network's weighted layers: never, on the main path only, or always.
NO_LAYER, MAIN_PATH_LAYER, ALWAYS_LAYER = 0, 1, 2


class Cost(NamedTuple):
    """One leaf op's share of the counts: fvcore's operator name and its FLOPs ("" and 0 where fvcore counts
    nothing). A tuple, since the counter makes one per leaf op it meets."""

    params: int = 0
    activations: int = 0
    layer: int = NO_LAYER
    operator: str = ""
    flops: int = 0


FREE = Cost()


@dataclass(frozen=True)
class OpRecord:
    """One op type: its cost, memory and state_dict entries (leaf ops), or that its children carry them."""

    operators: tuple[str, ...]  # the fvcore operators its cost may name
    # Each takes an op of the record's type.
    cost: Callable[..., Cost] | None  # None: a composite, counted through its children
    feature_maps: Callable[..., tuple[int, int]]  # (largest map it touches, elements it saves), one image
    state: Callable[..., Entries]  # (key relative to the op, shape) of every tensor its module registers
    # A composite's children that are off the main path (their convs are not counted as the network's layers).
    side_path: Callable[..., frozenset[str]] = lambda op: frozenset()
    # A parameter its parent module owns itself (a layer scale): no module of its own, its one state_dict key
    # the name it is registered under, listed before the parent's submodules (torch's order).
    own_parameter: bool = False


def elements(channels: int, size: p.Size2) -> int:
    return channels * size[0] * size[1]


def _none(op: p.Op) -> Entries:
    return iter(())


def _in_place(op: p.Op) -> tuple[int, int]:
    """Ops that work on a map another op already made (activations, identity, flatten, dropout, padding)."""
    return 0, 0


def _nested(op: p.Op) -> tuple[int, int]:
    return nested_feature_maps(p.children(op))


def nested_feature_maps(items: p.Items) -> tuple[int, int]:
    largest, saved = 0, 0
    for _, op in items:
        a, b = record(op).feature_maps(op)
        largest, saved = max(largest, a), saved + b
    return largest, saved


def _children_state(op: p.Op) -> Entries:
    items = p.children(op)
    # A module lists its own parameters first, then its submodules' entries.
    for own in (True, False):
        for name, child in items:
            entry = record(child)
            if entry.own_parameter is own:
                for key, shape in entry.state(child):
                    yield (f"{name}.{key}" if key else name), shape


# Conv: multiply-adds per output element times outputs; a weighted layer on the main path.
def _conv_cost(op: p.Conv) -> Cost:
    per_output = (op.in_channels // op.groups) * op.kernel * op.kernel
    outputs = elements(op.out_channels, op.out_size)
    params = op.out_channels * per_output + (op.out_channels if op.bias else 0)
    return Cost(params, outputs, MAIN_PATH_LAYER, "conv", outputs * per_output)


def _conv_maps(op: p.Conv) -> tuple[int, int]:
    out = elements(op.out_channels, op.out_size)
    return max(out, elements(op.in_channels, op.in_size)), out


def _conv_state(op: p.Conv) -> Entries:
    yield "weight", (op.out_channels, op.in_channels // op.groups, op.kernel, op.kernel)
    if op.bias:
        yield "bias", (op.out_channels,)


# Norms: fvcore counts batch norm at 2 flops per element (scale and shift), group norm at 5.
def _norm_cost(op: p.Norm) -> Cost:
    n = elements(op.channels, op.size)
    if op.kind == "batch":
        return Cost(2 * op.channels, 0, NO_LAYER, "batch_norm", 2 * n)
    return Cost(2 * op.channels, 0, NO_LAYER, "group_norm", 5 * n)


def _norm_maps(op: p.Norm) -> tuple[int, int]:
    n = elements(op.channels, op.size)
    return n, n


def _norm_state(op: p.Norm) -> Entries:
    yield "weight", (op.channels,)
    yield "bias", (op.channels,)
    if op.kind == "batch":
        yield "running_mean", (op.channels,)
        yield "running_var", (op.channels,)
        yield "num_batches_tracked", ()


def _linear_cost(op: p.Linear) -> Cost:
    params = op.in_features * op.out_features + (op.out_features if op.bias else 0)
    return Cost(params, op.out_features, ALWAYS_LAYER, "linear", op.in_features * op.out_features)


def _linear_state(op: p.Linear) -> Entries:
    yield "weight", (op.out_features, op.in_features)
    if op.bias:
        yield "bias", (op.out_features,)


def _pool_maps(op: p.MaxPool | p.AvgPool) -> tuple[int, int]:
    out = elements(op.channels, op.out_size)
    return max(out, elements(op.channels, op.in_size)), out


def _adaptive_cost(op: p.AdaptivePool) -> Cost:
    if op.kind == "avg":
        return Cost(operator="adaptive_avg_pool2d", flops=elements(op.channels, op.in_size))
    return FREE


def _gate_maps(op: p.SqueezeExcite) -> tuple[int, int]:
    # The gated map is a new one, as large as the input; the squeeze path's maps are 1x1.
    largest, saved = _nested(op)
    n = elements(op.channels, op.size)
    return max(largest, n), saved + n


def _free(op: p.Op) -> Cost:
    return FREE


# Layer norm: fvcore counts 5 flops per element with an affine (its norm rule), as for group norm.
def _layer_norm_cost(op: p.LayerNorm) -> Cost:
    return Cost(2 * op.channels, 0, NO_LAYER, "layer_norm", 5 * elements(op.channels, op.size))


def _layer_norm_maps(op: p.LayerNorm) -> tuple[int, int]:
    n = elements(op.channels, op.size)
    return n, n


def _affine_state(op: p.LayerNorm) -> Entries:
    yield "weight", (op.channels,)
    yield "bias", (op.channels,)


def _pixel_linear_cost(op: p.PixelLinear) -> Cost:
    params = op.in_features * op.out_features + (op.out_features if op.bias else 0)
    pixels = op.size[0] * op.size[1]
    flops = op.in_features * op.out_features * pixels
    return Cost(params, op.out_features * pixels, MAIN_PATH_LAYER, "linear", flops)


def _pixel_linear_maps(op: p.PixelLinear) -> tuple[int, int]:
    out = elements(op.out_features, op.size)
    return max(out, elements(op.in_features, op.size)), out


def _pixel_linear_state(op: p.PixelLinear) -> Entries:
    yield "weight", (op.out_features, op.in_features)
    if op.bias:
        yield "bias", (op.out_features,)


def _layer_scale_maps(op: p.LayerScale) -> tuple[int, int]:
    n = elements(op.channels, op.size)
    return n, n


def _layer_scale_state(op: p.LayerScale) -> Entries:
    yield "", (op.channels, 1, 1)


RECORDS: dict[type, OpRecord] = {
    p.Conv: OpRecord(("conv",), _conv_cost, _conv_maps, _conv_state),
    p.Norm: OpRecord(("batch_norm", "group_norm"), _norm_cost, _norm_maps, _norm_state),
    p.Linear: OpRecord(
        ("linear",),
        _linear_cost,
        lambda op: (max(op.in_features, op.out_features), op.out_features),
        _linear_state,
    ),
    p.AdaptivePool: OpRecord(
        ("adaptive_avg_pool2d",),
        _adaptive_cost,
        lambda op: (elements(op.channels, op.in_size), elements(op.channels, op.out_size)),
        _none,
    ),
    p.MaxPool: OpRecord((), _free, _pool_maps, _none),
    p.AvgPool: OpRecord((), _free, _pool_maps, _none),
    p.Act: OpRecord((), _free, _in_place, _none),
    p.Identity: OpRecord((), _free, _in_place, _none),
    p.Flatten: OpRecord((), _free, _in_place, _none),
    p.Dropout: OpRecord((), _free, _in_place, _none),
    p.ZeroPadShortcut: OpRecord((), _free, _in_place, _none),
    p.SqueezeExcite: OpRecord(
        (),
        None,
        _gate_maps,
        _children_state,
        side_path=lambda op: frozenset(name for name, _ in p.children(op)),
    ),
    p.LayerNorm: OpRecord(("layer_norm",), _layer_norm_cost, _layer_norm_maps, _affine_state),
    p.Permute: OpRecord((), _free, _in_place, _none),
    p.PixelLinear: OpRecord(("linear",), _pixel_linear_cost, _pixel_linear_maps, _pixel_linear_state),
    p.LayerScale: OpRecord(
        (), lambda op: Cost(params=op.channels), _layer_scale_maps, _layer_scale_state, own_parameter=True
    ),
    p.Sequence: OpRecord((), None, _nested, _children_state),
    p.Residual: OpRecord(
        (),
        None,
        _nested,
        _children_state,
        side_path=lambda op: frozenset({op.shortcut_name}),
    ),
}
# fvcore's operator names, in the order `flops_by_op` lists them.
OPERATORS: tuple[str, ...] = tuple(sorted({name for entry in RECORDS.values() for name in entry.operators}))


def record(op: object) -> OpRecord:
    """The record of `op`'s type; an op type without one is an error, never a silent zero."""
    found = RECORDS.get(type(op))
    if found is None:
        raise TypeError(f"no op record for {type(op).__name__}")
    return found
