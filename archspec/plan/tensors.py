"""The state_dict a plan's module will have, read off the plan: every key with its shape, and where it lives.

This is what a weights file or a checkpoint is checked against before anything is built,
so a file of the wrong architecture (or a crafted one) costs nothing but a message. One
record per op type (`archspec.plan.records`), shared with the counter and the memory estimate; an op
without one is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from archspec.plan import ops as p
from archspec.plan.records import RECORDS, Entries, Shape

_Entries = Entries


# The state_dict layout's table: one record per op type (tests/test_registry.py checks it covers every op).
HANDLERS = RECORDS


def tensor_entries(op: p.Op) -> _Entries:
    """(key relative to `op`, shape) of every parameter and buffer `op`'s module registers, in order."""
    entry = RECORDS.get(type(op))
    if entry is None:
        raise TypeError(f"the state_dict layout has no handler for {type(op).__name__}")
    return entry.state(op)


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
