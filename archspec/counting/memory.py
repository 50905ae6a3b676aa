"""Memory estimates read off the plan, for the guard that runs before any tensor is made (`archspec.nn.guard`).

Per image, every op has a handler giving the largest feature map it touches and the
elements it leaves for a backward pass; an op without a handler is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from archspec.counting.analytic import count_ops
from archspec.plan import ops as p

FLOAT_BYTES = 4
# A no-grad forward pass holds a layer's input, its output and a scratch copy at most.
_LIVE_TENSORS = 3
# Training holds weights, gradients and the optimizer's momentum for every parameter.
_TRAIN_PARAM_COPIES = 3
Mode = Literal["weights", "inference", "train"]


def _elements(channels: int, size: p.Size2) -> int:
    return channels * size[0] * size[1]


def _conv(op: p.Conv) -> tuple[int, int]:
    out = _elements(op.out_channels, op.out_size)
    return max(out, _elements(op.in_channels, op.in_size)), out


def _norm(op: p.Norm) -> tuple[int, int]:
    n = _elements(op.channels, op.size)
    return n, n


def _pool(op: p.MaxPool | p.AvgPool) -> tuple[int, int]:
    out = _elements(op.channels, op.out_size)
    return max(out, _elements(op.channels, op.in_size)), out


def _adaptive(op: p.AdaptivePool) -> tuple[int, int]:
    return _elements(op.channels, op.in_size), _elements(op.channels, op.out_size)


def _linear(op: p.Linear) -> tuple[int, int]:
    return max(op.in_features, op.out_features), op.out_features


def _se(op: p.SqueezeExcite) -> tuple[int, int]:
    n = _elements(op.channels, op.size)
    return n, n


def _nested(items: Iterable[tuple[str, p.Op]]) -> tuple[int, int]:
    largest, saved = 0, 0
    for _, op in items:
        a, b = feature_maps(op)
        largest, saved = max(largest, a), saved + b
    return largest, saved


def _in_place(op: p.Op) -> tuple[int, int]:
    """Ops that work on a map another op already made (activations, identity, flatten, dropout, option A's padding)."""
    return 0, 0


HANDLERS: dict[type, Callable[..., tuple[int, int]]] = {
    p.Conv: _conv,
    p.Norm: _norm,
    p.MaxPool: _pool,
    p.AvgPool: _pool,
    p.AdaptivePool: _adaptive,
    p.Linear: _linear,
    p.SqueezeExcite: _se,
    p.Sequence: lambda op: _nested(op.items),
    p.Residual: lambda op: _nested(p.children(op)),
    p.Act: _in_place,
    p.Identity: _in_place,
    p.Flatten: _in_place,
    p.Dropout: _in_place,
    p.ZeroPadShortcut: _in_place,
}


def feature_maps(op: p.Op) -> tuple[int, int]:
    """(elements of the largest map `op` touches, elements it saves for backward), for one image."""
    handler = HANDLERS.get(type(op))
    if handler is None:
        raise TypeError(f"the memory estimate has no handler for {type(op).__name__}")
    return handler(op)


def largest_activation(items: Iterable[tuple[str, p.Op]]) -> int:
    """Elements of the largest feature map any op of the plan produces, for one image."""
    return _nested(items)[0]


def estimate_bytes(plan: p.Plan, batch: int, mode: Mode = "inference") -> tuple[int, int]:
    """(parameter bytes, activation bytes) of a float32 model: its weights alone, a no-grad forward pass at
    `batch`, or a training step (weights, gradients and momentum; every map kept for the backward pass)."""
    params = count_ops(plan.children).params * FLOAT_BYTES
    if mode == "weights":
        return params, 0
    largest, saved = _nested(plan.children)
    if mode == "train":
        return params * _TRAIN_PARAM_COPIES, batch * (saved + largest) * FLOAT_BYTES
    return params, batch * largest * FLOAT_BYTES * _LIVE_TENSORS
