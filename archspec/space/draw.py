"""One draw from a space: values for its slots, and the spec mapping they make.

Draw `i` of seed `s` uses its own generator, seeded with (s, i), so a draw is the same whichever
process makes it and whatever was drawn before it: a run is reproducible from its seed alone,
and its draws can be evaluated in parallel.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archspec.errors import Problem, SpecError, format_path
from archspec.lang.yamldoc import Document
from archspec.space.distributions import Choice, Distribution
from archspec.space.located import Path
from archspec.space.template import Slot, Space, fill, located_document

# Seeds and draw indices each fit in 32 bits; together they seed one generator per draw.
SEED_SPAN = 1 << 32
# An ordered tie draws its stages again until they are in order: 4 stages need 24 tries on average.
MAX_ORDER_TRIES = 100_000


@dataclass(frozen=True)
class Draw:
    """What one draw gave: the values by their path in the spec (with the place in the space file that
    wrote each), the same values as a report lists them, and the spec data they make."""

    index: int
    count: int  # the number of stages a stage template made (0 without one)
    values: dict[Path, tuple[Path, Any]]
    fields: dict[str, Any]
    data: dict[str, Any]

    def located(self, space: Space) -> Document:
        """The drawn spec as a document whose marks point into the space file (for messages)."""
        return located_document(space, self.values, self.count)


def generator(seed: int, index: int) -> random.Random:
    return random.Random(seed * SEED_SPAN + index)


def draw(space: Space, seed: int, index: int) -> Draw:
    """Draw number `index` of `seed`: the number of stages first, then each field (or tied group) in file order."""
    rng = generator(seed, index)
    fields: dict[str, Any] = {}
    count = 0
    template = space.stage_template
    count_slot = space.count_slot()
    if template is not None:
        if count_slot is not None:
            count = count_slot.distribution.draw(rng)
            fields["stages.count"] = count
        else:
            assert isinstance(template.count, int)
            count = template.count
    values: dict[Path, tuple[Path, Any]] = {}
    for group in _groups(space, count, count_slot):
        if group.shared:
            value = group.sample(rng)
            for member in group.members:
                values[member.path] = (member.slot.path, value)
            fields[group.name] = value
            continue
        if group.order is not None:
            drawn = _ordered(group, rng, space)
        else:
            drawn = [group.sample(rng)]
        for member, value in zip(group.members, drawn, strict=True):
            values[member.path] = (member.slot.path, value)
            fields[member.name] = value
    data = fill(space, lambda slot, stage: values[slot.spec_path(stage)][1], count)
    return Draw(index, count, values, fields, data)


@dataclass(frozen=True)
class _Member:
    """One slot at one stage: where its value goes in the spec, and the name a report gives it."""

    slot: Slot
    path: Path
    name: str
    sample: Callable[[random.Random], Any]


@dataclass(frozen=True)
class _Group:
    """Slots drawn together: one alone, a shared field (one value), or an ordered one (redrawn until in order)."""

    members: tuple[_Member, ...]
    shared: bool
    order: str | None
    name: str

    def sample(self, rng: random.Random) -> Any:
        return self.members[0].sample(rng)


def _groups(space: Space, count: int, count_slot: Slot | None) -> list[_Group]:
    """The slots of one draw (a template's once per stage) grouped by what is drawn together, in file order;
    prepared once for each number of stages."""
    known: list[_Group] | None = space.groups.get(count)
    if known is None:
        known = space.groups[count] = _group(space, count, count_slot)
    return known


def _group(space: Space, count: int, count_slot: Slot | None) -> list[_Group]:
    groups: dict[tuple[Any, ...], list[_Member]] = {}
    for slot in space.slots:
        if slot is count_slot:
            continue
        sample = slot.distribution.sampler()
        for stage in range(count) if slot.template else [slot.stage]:
            d = slot.distribution
            if d.shared:
                key: tuple[Any, ...] = ("shared", slot.tie)
            elif d.order is not None:
                key = ("order", slot.tie)
            else:
                key = ("one", id(slot), stage)
            path = slot.spec_path(stage)
            groups.setdefault(key, []).append(_Member(slot, path, format_path(path), sample))
    found = []
    for members in groups.values():
        d = members[0].slot.distribution
        found.append(_Group(tuple(members), d.shared, d.order, "stages.*." + format_path(members[0].slot.tie)))
    return found


def _ordered(group: _Group, rng: random.Random, space: Space) -> list[Any]:
    for _ in range(MAX_ORDER_TRIES):
        drawn = [member.sample(rng) for member in group.members]
        pairs = itertools.pairwise(drawn)
        if all(a <= b for a, b in pairs) if group.order == "non_decreasing" else all(a >= b for a, b in pairs):
            return drawn
    slot = group.members[0].slot
    raise SpecError(
        Problem(
            space.doc.mark_for((*slot.path, "order"), key=True),
            format_path(slot.path),
            f"no draw of {len(group.members)} stages was in order ({group.order}) in {MAX_ORDER_TRIES:,} tries; "
            "let the distributions overlap more, or drop `order`",
        )
    )


def distinct_specs(space: Space) -> int | None:
    """How many distinct draws the space can give at most (draws are told apart by their values), or None
    when a distribution draws real numbers: 1 for a spec that draws nothing."""
    count_slot = space.count_slot()
    if count_slot is None:
        template = space.stage_template
        return _product(space, template.count if template is not None and isinstance(template.count, int) else 0)
    d = count_slot.distribution
    counts = {int(v) for v in d.choice} if isinstance(d, Choice) else {int(v) for v in _grid_values(d)}
    sizes = [_product(space, count, count_slot) for count in counts]
    return None if None in sizes else sum(size for size in sizes if size is not None)


def _grid_values(d: Distribution) -> list[Any]:
    grid = getattr(d, "grid", None)
    return [grid.value(k) for k in range(grid.count)] if grid is not None else []


def _distinct(d: Distribution) -> int | None:
    """How many distinct values a distribution draws; None for real numbers."""
    if isinstance(d, Choice):
        return len({repr(value) for value in d.choice})
    grid = getattr(d, "grid", None)
    return grid.count if grid is not None else None


def _product(space: Space, count: int, count_slot: Slot | None = None) -> int | None:
    """Distinct draws with `count` stages: the product of every group's values (a shared group counts once)."""
    size = 1
    for group in _groups(space, count, count_slot):
        for member in group.members[:1] if group.shared else group.members:
            values = _distinct(member.slot.distribution)
            if values is None:
                return None
            size *= values
    return size
