"""What a space may write instead of a value: a choice, a uniform range, or a log-uniform range.

- `{choice: [a, b, c]}`: each value equally likely.
- `{range: [lo, hi]}`: uniform. Integer ends draw integers (every integer from lo to hi); with
  `step: s` the grid lo, lo + s, lo + 2s, ... up to hi; with `multiple_of: m` the multiples of m
  between lo and hi; a non-integer end with neither draws a real number.
- `{log_range: [lo, hi]}`: log-uniform (every factor equally likely), lo > 0. The same rules make
  it discrete: the real draw is rounded to the nearest grid value (integers, `step` or
  `multiple_of`), so a grid value's probability is the log-width of the interval it rounds from.

On a stage's field, `shared: true` draws one value for every stage (RegNet's shared group width),
and `order: non_decreasing` (or `non_increasing`) keeps only draws whose values across the stages
are in that order (AnyNetX_D's widths): all stages' values are drawn again together until they are,
which is exactly the independent draws conditioned on the order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from archspec.errors import shorten

Number = int | float
Order = Literal["non_decreasing", "non_increasing"]
# The keys that make a mapping a distribution, one per kind.
KINDS = ("choice", "range", "log_range")
# A grid up to this size is listed once; a larger one computes each value it draws.
_MAX_LISTED = 100_000
# Bounds on what a distribution may write, so that its grid is always formed exactly and at once: no field of a
# spec takes a number near 10**18, and a grid of more values than there are floats between its ends is a typo.
MAX_END = 10**18
MAX_GRID = 10**15


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decimal(value: Number) -> Decimal:
    # The number as it was written: 0.1 is one tenth, not the binary fraction nearest it.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class Grid:
    """Evenly spaced values `start + k * step` for k = 0 .. count - 1 (integers, or decimals as floats)."""

    start: Decimal
    step: Decimal
    count: int
    integers: bool
    # The values themselves, for a grid small enough to list (drawing then costs one lookup).
    listed: tuple[Number, ...] = field(default=(), compare=False, repr=False)
    start_float: float = field(default=0.0, compare=False, repr=False)
    step_float: float = field(default=1.0, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Frozen: the derived fields are set once, here.
        object.__setattr__(self, "start_float", float(self.start))
        object.__setattr__(self, "step_float", float(self.step))
        if self.count <= _MAX_LISTED:
            object.__setattr__(self, "listed", tuple(self._exact(k) for k in range(self.count)))

    def _exact(self, k: int) -> Number:
        exact = self.start + k * self.step
        return int(exact) if self.integers else float(exact)

    def value(self, k: int) -> Number:
        return self.listed[k] if self.listed else self._exact(k)

    def nearest(self, x: float) -> Number:
        """The grid value nearest `x` (the ends take everything beyond them)."""
        k = round((x - self.start_float) / self.step_float)
        return self.value(min(max(k, 0), self.count - 1))


class Distribution(BaseModel):
    """What every distribution shares; `draw` gives one value."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    shared: bool = Field(False, description="On a stage's field: one draw for every stage.")
    order: Order | None = Field(
        None, description="On a stage's field: keep only draws whose values across the stages are in this order."
    )

    @field_validator("order")
    @classmethod
    def _order_or_shared(cls, order: Order | None, info: ValidationInfo) -> Order | None:
        if order is not None and info.data.get("shared"):
            raise ValueError("`shared` and `order` are exclusive: a shared value is the same on every stage")
        return order

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def numeric(self) -> bool:
        """Whether every value it draws is a number."""
        return True

    def sampler(self) -> Callable[[random.Random], Any]:
        """A function that draws one value with the generator it is given (made once, called per draw)."""
        raise NotImplementedError

    def draw(self, rng: random.Random) -> Any:
        return self.sampler()(rng)

    def probes(self) -> list[tuple[tuple[str | int, ...], Any]]:
        """Values worth checking against the field, each with the path (under the distribution) that gave it."""
        raise NotImplementedError


class Choice(Distribution):
    """One of the listed values, each equally likely."""

    choice: list[Any] = Field(min_length=1, description="The values to choose from.")

    @field_validator("choice")
    @classmethod
    def _plain_values(cls, values: list[Any], info: ValidationInfo) -> list[Any]:
        for value in values:
            if isinstance(value, dict):
                raise ValueError("a choice lists plain values (numbers, names, true or false), not mappings")
        if info.data.get("order") and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError("`order` compares numbers; this choice lists other values")
        return values

    @property
    def kind(self) -> str:
        return "choice"

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.choice)

    def sampler(self) -> Callable[[random.Random], Any]:
        values, count = tuple(self.choice), len(self.choice)
        return lambda rng: values[rng.randrange(count)]

    def probes(self) -> list[tuple[tuple[str | int, ...], Any]]:
        return [(("choice", i), value) for i, value in enumerate(self.choice)]


def _interval_probes(
    kind: str, ends: tuple[Number, Number], grid: Grid | None
) -> list[tuple[tuple[str | int, ...], Any]]:
    """The two values a range can draw at its ends (grid values, where there is a grid)."""
    if grid is None:
        return [((kind, 0), ends[0]), ((kind, 1), ends[1])]
    return [((kind, 0), grid.value(0)), ((kind, 1), grid.value(grid.count - 1))]


def _grid(ends: tuple[Number, Number], step: Number | None, multiple_of: int | None) -> Grid | None:
    lo, hi = ends
    if multiple_of is not None:
        first, last = math.ceil(_decimal(lo) / multiple_of), math.floor(_decimal(hi) / multiple_of)
        return Grid(Decimal(first * multiple_of), Decimal(multiple_of), last - first + 1, True)
    if step is None:
        if not (_is_int(lo) and _is_int(hi)):
            return None
        step = 1
    start, spacing = _decimal(lo), _decimal(step)
    if _decimal(hi) - start >= spacing * MAX_GRID:
        raise ValueError(
            f"steps of {step!r} from {lo!r} to {hi!r} make more than {MAX_GRID:.0e} values; use a larger step "
            "(or no step, for a real number)"
        )
    count = int((_decimal(hi) - start) // spacing) + 1
    return Grid(start, spacing, count, _is_int(lo) and _is_int(step))


def _check_ends(ends: list[Number], *, positive: bool) -> list[Number]:
    if len(ends) != 2:
        raise ValueError(f"expected [low, high], two numbers, got a list of {len(ends)}")
    for end in ends:
        if not (math.isfinite(end) and abs(end) <= MAX_END):
            raise ValueError(f"expected ends between -1e18 and 1e18, got {_shown(end)}")
    lo, hi = ends
    if positive and lo <= 0:
        raise ValueError(f"a log range starts above 0 (it draws every factor equally often), got {lo!r}")
    if lo > hi:
        raise ValueError(f"the low end {lo!r} is above the high end {hi!r}")
    return ends


def _shown(value: Number) -> str:
    return shorten(repr(value), 24)


def _check_grid(value: Any, info: ValidationInfo, ends_key: str) -> Any:
    """`step` and `multiple_of` exclusive, and a grid with at least one value."""
    ends = info.data.get(ends_key)
    if info.data.get("step") is not None and value is not None:
        raise ValueError(
            "`step` and `multiple_of` are exclusive: give the spacing from lo, or the number whose multiples to draw"
        )
    if (
        ends is not None
        and value is not None
        and math.ceil(_decimal(ends[0]) / value) > math.floor(_decimal(ends[1]) / value)
    ):
        raise ValueError(f"no multiple of {value} lies between {ends[0]!r} and {ends[1]!r}")
    return value


class Range(Distribution):
    """Uniform between two ends (on a grid, each grid value equally likely)."""

    range: list[Number] = Field(description="[low, high], both included.")
    step: Number | None = Field(
        None, gt=0, le=MAX_END, description="Draw from the grid lo, lo + step, lo + 2 step, ... up to hi."
    )
    multiple_of: int | None = Field(
        None, ge=1, le=MAX_END, description="Draw from the multiples of this integer between lo and hi."
    )

    @field_validator("range")
    @classmethod
    def _ends(cls, ends: list[Number]) -> list[Number]:
        return _check_ends(ends, positive=False)

    @field_validator("multiple_of")
    @classmethod
    def _one_grid(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_grid(value, info, "range")  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _grid_formed(self) -> Range:
        _ = self.grid  # a grid too fine to form is refused here, at the line that wrote it
        return self

    @cached_property
    def grid(self) -> Grid | None:
        """The values it draws from, or None for a real number."""
        return _grid((self.range[0], self.range[1]), self.step, self.multiple_of)

    @property
    def kind(self) -> str:
        return "range"

    def probes(self) -> list[tuple[tuple[str | int, ...], Any]]:
        return _interval_probes("range", (self.range[0], self.range[1]), self.grid)

    def sampler(self) -> Callable[[random.Random], Number]:
        grid = self.grid
        if grid is None:
            lo, width = self.range[0], self.range[1] - self.range[0]
            return lambda rng: lo + width * rng.random()
        if grid.listed:
            listed, count = grid.listed, grid.count
            return lambda rng: listed[rng.randrange(count)]
        return lambda rng: grid.value(rng.randrange(grid.count))


class LogRange(Distribution):
    """Log-uniform between two positive ends; on a grid, the nearest grid value to a log-uniform draw."""

    log_range: list[Number] = Field(description="[low, high], both above 0 and included.")
    step: Number | None = Field(
        None, gt=0, le=MAX_END, description="Round to the grid lo, lo + step, lo + 2 step, ... up to hi."
    )
    multiple_of: int | None = Field(
        None, ge=1, le=MAX_END, description="Round to the multiples of this integer between lo and hi."
    )

    @field_validator("log_range")
    @classmethod
    def _ends(cls, ends: list[Number]) -> list[Number]:
        return _check_ends(ends, positive=True)

    @field_validator("multiple_of")
    @classmethod
    def _one_grid(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _check_grid(value, info, "log_range")  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _grid_formed(self) -> LogRange:
        _ = self.grid  # a grid too fine to form is refused here, at the line that wrote it
        return self

    @cached_property
    def grid(self) -> Grid | None:
        """The values it rounds to, or None for a real number."""
        return _grid((self.log_range[0], self.log_range[1]), self.step, self.multiple_of)

    @property
    def kind(self) -> str:
        return "log_range"

    def probes(self) -> list[tuple[tuple[str | int, ...], Any]]:
        return _interval_probes("log_range", (self.log_range[0], self.log_range[1]), self.grid)

    def sampler(self) -> Callable[[random.Random], Number]:
        low, span = math.log(self.log_range[0]), math.log(self.log_range[1]) - math.log(self.log_range[0])
        grid = self.grid
        if grid is None:
            return lambda rng: math.exp(low + span * rng.random())
        return lambda rng: grid.nearest(math.exp(low + span * rng.random()))


MODELS: dict[str, type[Distribution]] = {"choice": Choice, "range": Range, "log_range": LogRange}
