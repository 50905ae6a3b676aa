"""A space's `constraints:`: bounds on what each drawn network costs, checked with the analytic counter.

    constraints:
      flops: [360M, 440M]    # fvcore's convention, as `archspec flops` reports
      params: [0, 10M]
      depth: [10, 60]        # weighted layers on the main path (resnet50: 50)

Each bound is `[low, high]`, both included; a number may carry a unit: K, M, G or T (powers of 1000).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from archspec.errors import shorten

_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?\s*([kKmMgGtT]?)\s*")
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
# What a network costs, by the name a constraint (and a samples file) gives it.
QUANTITIES = ("params", "flops", "macs", "activations", "depth", "stages")


# The largest quantity taken: far above any network's count, far below where floats lose integers' meaning.
MAX_QUANTITY = 1e18


def parse_quantity(value: object) -> float:
    """`400M` -> 4e8, `2.5G` -> 2.5e9, `1200` -> 1200; ValueError for anything else (a bool, a negative, a number
    above MAX_QUANTITY). No power of ten is computed: `1e99999999` is refused at once."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number such as 400M or 4G, got the boolean `{str(value).lower()}`")
    if isinstance(value, int) and not -MAX_QUANTITY <= value <= MAX_QUANTITY:
        number = math.copysign(math.inf, value)  # float() of a 5,000-digit integer raises
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 100 and (match := _QUANTITY.fullmatch(value)):
        digits, exponent, unit = match.groups()
        # float() reads the exponent as the C library does: a huge one gives inf (or 0) at once.
        number = float(f"{digits}e{exponent or 0}") * _UNITS[unit.lower()]
    else:
        raise ValueError(f"expected a number such as 400M or 4G (units K, M, G, T), got {shorten(repr(value))}")
    if math.isnan(number):
        raise ValueError("expected a number such as 400M or 4G, got NaN (not a number)")
    if number > MAX_QUANTITY:
        raise ValueError(f"{shorten(str(value), 24)} is too large: a quantity is at most {MAX_QUANTITY:.0e}")
    if not number >= 0:
        raise ValueError(f"expected a number of at least 0, got {shorten(repr(value))}")
    return number


def format_quantity(value: float) -> str:
    """4e8 -> `400M`, 2.006e9 -> `2.006G`: four significant digits and a unit, as constraints are written."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


def _bound(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("expected [low, high], for example [360M, 440M]")
    lo, hi = parse_quantity(value[0]), parse_quantity(value[1])
    if lo > hi:
        raise ValueError(f"the low end {value[0]} is above the high end {value[1]}: no network can satisfy it")
    return lo, hi


Bound = tuple[float, float] | None


class Constraints(BaseModel):
    """Bounds on the derived quantities of every drawn network; a draw outside any of them is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: Bound = Field(None, description="Parameters.")
    flops: Bound = Field(
        None, description="FLOPs per image at the spec's input size (fvcore: one multiply-add is one flop)."
    )
    macs: Bound = Field(None, description="Conv and fully connected multiply-adds (torchvision's GFLOPS).")
    activations: Bound = Field(None, description="Output elements of every conv and fully connected layer.")
    depth: Bound = Field(None, description="Weighted layers on the main path (resnet50: 50).")
    stages: Bound = Field(None, description="Number of stages (after a generator is expanded).")

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> tuple[float, float] | None:
        return None if value is None else _bound(value)

    def bounds(self) -> dict[str, tuple[float, float]]:
        """The bounds given, in the order of `QUANTITIES`."""
        return {name: bound for name in QUANTITIES if (bound := getattr(self, name)) is not None}
