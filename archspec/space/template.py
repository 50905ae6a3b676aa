"""A loaded space: the spec with a `Slot` where each value is drawn, and how a draw's values make a spec.

`archspec.space.load` builds a `Space` from a space file; `archspec.space.draw` fills its slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from archspec.lang.yamldoc import Document
from archspec.space.constraints import Constraints
from archspec.space.distributions import Distribution
from archspec.space.located import Path

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Slot:
    """One field of the space that is drawn: where the space file writes it, and from what."""

    path: Path  # in the space file: ("stages", "each", "width") for a field of the stage template
    distribution: Distribution
    stage: int | None = None  # the stage of an explicit list; None for a template's or the network's
    template: bool = False  # a field of `stages.each`, drawn once per stage

    @property
    def tie(self) -> Path:
        """The field's path inside its stage (ties group a field across stages by it)."""
        return self.path[2:]

    def spec_path(self, stage: int | None) -> Path:
        """Where the drawn value goes in the spec: a template's field at `("stages", stage, ...)`."""
        return ("stages", stage, *self.path[2:]) if self.template and stage is not None else self.path


@dataclass(frozen=True)
class StageTemplate:
    """`stages: {count: ..., each: {...}}`: a drawn number of stages, each drawn from one template."""

    count: int | Slot
    each: dict[str, Any]


@dataclass(frozen=True)
class Space:
    """A design space: the spec with `Slot`s where it has distributions, and the constraints."""

    source: str
    name: str
    template: dict[str, Any]  # the resolved spec data, Slot or StageTemplate where values are drawn
    slots: tuple[Slot, ...]  # in the order of the file
    constraints: Constraints
    doc: Document  # the space file, for locating what a draw gets wrong
    dynamic: frozenset[int] = frozenset()  # the ids of the template's mappings and lists that hold a Slot
    # What `archspec.space.draw` prepares for each number of stages, kept to be reused by every draw.
    groups: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def stage_template(self) -> StageTemplate | None:
        stages = self.template.get("stages")
        return stages if isinstance(stages, StageTemplate) else None

    def count_slot(self) -> Slot | None:
        template = self.stage_template
        return template.count if template is not None and isinstance(template.count, Slot) else None

    def summary(self) -> str:
        """`space regnetx: 5 distributions; constraints on macs, stages`."""
        drawn = len(self.slots) + (1 if self.count_slot() else 0)
        bounds = self.constraints.bounds()
        limits = f"constraints on {', '.join(bounds)}" if bounds else "no constraints"
        return f"space {self.name}: {drawn} distribution{'' if drawn == 1 else 's'}; {limits}"


def located_document(space: Space, chosen: dict[Path, tuple[Path, Any]], count: int) -> Document:
    """The spec a draw makes, as a document whose marks point into the space file.

    `chosen` gives every drawn value by its path in the spec, with the place in the space file that
    wrote it; a template's stages take their marks from the template.
    """
    doc = space.doc
    marks, key_marks, raw = dict(doc.marks), dict(doc.key_marks), dict(doc.raw)
    if space.stage_template is not None:
        _each_stage(marks, count)
        _each_stage(key_marks, count)
        _each_stage(raw, count)
    for target, (where, _) in chosen.items():
        marks[target] = doc.marks.get(where) or doc.mark_for(where)
        raw.pop(target, None)
        if where in doc.raw:
            raw[target] = doc.raw[where]
    data = fill(space, lambda slot, stage: chosen[slot.spec_path(stage)][1], count)
    return Document(data=data, source=doc.source, marks=marks, key_marks=key_marks, raw=raw)


def _each_stage(table: dict[tuple[Any, ...], T], count: int) -> None:
    """Copy a table's entries under `stages.each` to every stage a template made."""
    for key, item in [(k, v) for k, v in table.items() if k[:2] == ("stages", "each")]:
        for i in range(count):
            table.setdefault(("stages", i, *key[2:]), item)


def fill(space: Space, value: Callable[[Slot, int | None], Any], count: int) -> dict[str, Any]:
    """The spec data: the template with every Slot replaced by `value(slot, stage)`, and a stage template by
    `count` stages. Parts without a slot are the template's own objects, shared: read the result, do not change it."""
    filled = _fill(space.template, value, count, None, space.dynamic)
    assert isinstance(filled, dict)
    return filled


def _fill(
    node: Any, value: Callable[[Slot, int | None], Any], count: int, stage: int | None, dynamic: frozenset[int]
) -> Any:
    if isinstance(node, Slot):
        return value(node, stage)
    if isinstance(node, StageTemplate):
        return [_fill(node.each, value, count, i, dynamic) for i in range(count)]
    if id(node) not in dynamic:
        return node
    if isinstance(node, dict):
        return {key: _fill(item, value, count, stage, dynamic) for key, item in node.items()}
    return [_fill(item, value, count, stage, dynamic) for item in node]


def dynamic_parts(template: dict[str, Any]) -> frozenset[int]:
    """The ids of the template's mappings and lists that hold a Slot (the parts a draw must copy)."""
    found: set[int] = set()
    _dynamic(template, found)
    return frozenset(found)


def _dynamic(node: Any, found: set[int]) -> bool:
    """Collect the ids of the mappings and lists that hold a Slot; return whether `node` holds one."""
    if isinstance(node, (Slot, StageTemplate)):
        if isinstance(node, StageTemplate):
            _dynamic(node.each, found)
        return True
    if isinstance(node, dict):
        holds = [_dynamic(item, found) for item in node.values()]
    elif isinstance(node, list):
        holds = [_dynamic(item, found) for item in node]
    else:
        return False
    if any(holds):
        found.add(id(node))
    return any(holds)
