"""The state_dict a plan's module will have, read off the plan: every key with its shape, and where it lives.

This is what a weights file or a checkpoint is checked against before anything is built,
so a file of the wrong architecture (or a crafted one) costs nothing but a message. One
handler per op type, as for the counter and the builder; an op without one is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from archspec.plan import ops as p

Shape = tuple[int, ...]
_Entries = Iterator[tuple[str, Shape]]


def _conv(op: p.Conv) -> _Entries:
    yield "weight", (op.out_channels, op.in_channels // op.groups, op.kernel, op.kernel)
    if op.bias:
        yield "bias", (op.out_channels,)


def _norm(op: p.Norm) -> _Entries:
    yield "weight", (op.channels,)
    yield "bias", (op.channels,)
    if op.kind == "batch":
        yield "running_mean", (op.channels,)
        yield "running_var", (op.channels,)
        yield "num_batches_tracked", ()


def _linear(op: p.Linear) -> _Entries:
    yield "weight", (op.out_features, op.in_features)
    if op.bias:
        yield "bias", (op.out_features,)


def _squeeze_excite(op: p.SqueezeExcite) -> _Entries:
    for name, conv in (("fc1", op.fc1), ("fc2", op.fc2)):
        for key, shape in _conv(conv):
            yield f"{name}.{key}", shape


def _children(op: p.Op) -> _Entries:
    for name, child in p.children(op):
        for key, shape in tensor_entries(child):
            yield f"{name}.{key}", shape


def _none(op: p.Op) -> _Entries:
    return iter(())


HANDLERS: dict[type, Callable[..., _Entries]] = {
    p.Conv: _conv,
    p.Norm: _norm,
    p.Linear: _linear,
    p.SqueezeExcite: _squeeze_excite,
    p.Sequence: _children,
    p.Residual: _children,
    p.Act: _none,
    p.MaxPool: _none,
    p.AvgPool: _none,
    p.AdaptivePool: _none,
    p.Identity: _none,
    p.Flatten: _none,
    p.Dropout: _none,
    p.ZeroPadShortcut: _none,
}


def tensor_entries(op: p.Op) -> _Entries:
    """(key relative to `op`, shape) of every parameter and buffer `op`'s module registers, in order."""
    handler = HANDLERS.get(type(op))
    if handler is None:
        raise TypeError(f"the state_dict layout has no handler for {type(op).__name__}")
    return handler(op)


def state_shapes(plan: p.Plan) -> dict[str, Shape]:
    """Every state_dict key of the plan's module, in the module's order, with its shape."""
    shapes: dict[str, Shape] = {}
    for name, op in plan.children:
        for key, shape in tensor_entries(op):
            shapes[f"{name}.{key}"] = shape
    return shapes


def describe_key(plan: p.Plan, key: str) -> str:
    """Where a key lives, in words (`stage 3, block 5`, `the stem`, `the head`), by the plan's layout."""
    from archspec.plan.layouts import LAYOUTS

    return LAYOUTS[plan.family].place(plan, key)


@dataclass(frozen=True)
class StateMismatch:
    """How a file's tensors differ from what the plan's module holds."""

    missing: list[str]
    unexpected: list[str]
    wrong_shape: list[tuple[str, Shape, Shape]]  # key, the file's shape, the plan's

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)


def compare_state(shapes: dict[str, Shape], plan: p.Plan) -> StateMismatch:
    """Compare a file's keys and shapes with the plan's."""
    expected = state_shapes(plan)
    return StateMismatch(
        missing=[key for key in expected if key not in shapes],
        unexpected=[key for key in shapes if key not in expected],
        wrong_shape=[
            (key, tuple(shapes[key]), shape)
            for key, shape in expected.items()
            if key in shapes and tuple(shapes[key]) != shape
        ],
    )


def head_keys(plan: p.Plan) -> list[str]:
    """The keys of the classifier's last layer (what changes with `head.num_classes`)."""
    if plan.taps is not None:
        return []
    last = [key for key in state_shapes(plan) if key.split(".")[0] in ("fc", "classifier")]
    if not last:
        return []
    prefix = last[-1].rsplit(".", 1)[0]
    return [key for key in last if key.rsplit(".", 1)[0] == prefix]
