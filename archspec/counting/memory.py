"""Memory estimates read off the plan, for the guard that runs before any tensor is made (`archspec.nn.guard`).

Per image, every op's record (`archspec.plan.records`) gives the largest feature map it touches and the
elements it leaves for a backward pass; an op without a record is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from archspec.counting.analytic import count_ops
from archspec.plan import ops as p
from archspec.plan.records import RECORDS, nested_feature_maps

FLOAT_BYTES = 4
# A no-grad forward pass holds a layer's input, its output and a scratch copy at most.
_LIVE_TENSORS = 3
# Training holds weights, gradients and the optimizer's momentum for every parameter.
_TRAIN_PARAM_COPIES = 3
Mode = Literal["weights", "inference", "train"]


# The memory estimate's table: one record per op type (tests/test_registry.py checks it covers every op).
HANDLERS = RECORDS


def feature_maps(op: p.Op) -> tuple[int, int]:
    """(elements of the largest map `op` touches, elements it saves for backward), for one image."""
    entry = RECORDS.get(type(op))
    if entry is None:
        raise TypeError(f"the memory estimate has no handler for {type(op).__name__}")
    return entry.feature_maps(op)


def largest_activation(items: Iterable[tuple[str, p.Op]]) -> int:
    """Elements of the largest feature map any op of the plan produces, for one image."""
    return nested_feature_maps(tuple(items))[0]


def estimate_bytes(plan: p.Plan, batch: int, mode: Mode = "inference") -> tuple[int, int]:
    """(parameter bytes, activation bytes) of a float32 model: its weights alone, a no-grad forward pass at
    `batch`, or a training step (weights, gradients and momentum; every map kept for the backward pass)."""
    params = count_ops(plan.children).params * FLOAT_BYTES
    if mode == "weights":
        return params, 0
    largest, saved = nested_feature_maps(plan.children)
    if mode == "train":
        return params * _TRAIN_PARAM_COPIES, batch * (saved + largest) * FLOAT_BYTES
    return params, batch * largest * FLOAT_BYTES * _LIVE_TENSORS
