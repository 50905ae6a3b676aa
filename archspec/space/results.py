"""What `archspec sample` and `archspec fit` return, as frozen dataclasses; their JSON is `dataclasses.asdict`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SampleRecord:
    """One sampled spec: its name and file, the draw that made it, the values drawn, and what it costs."""

    name: str
    file: str
    draw: int
    fields: dict[str, Any]
    params: int
    flops: int
    macs: int
    activations: int
    depth: int
    stages: int


@dataclass(frozen=True)
class InvalidDraws:
    """Draws that are not valid networks, by the field at fault, with one of their messages."""

    field: str
    count: int
    example: str


@dataclass(frozen=True)
class SampleStats:
    """How many draws it took: drawn = accepted + duplicates + invalid + refused.

    `refused_by` counts the draws each constraint refused; a draw outside several counts under each. The
    number of stages is checked first, as soon as a generator has expanded them: a draw outside it is
    refused before it is planned, and counted under `stages` alone.
    """

    drawn: int
    accepted: int
    duplicates: int
    invalid: int
    refused: int
    refused_by: dict[str, int]
    invalid_by: list[InvalidDraws]


@dataclass(frozen=True)
class SampleRun:
    """`archspec sample`: the space, the seed, the samples and the statistics (the content of samples.json)."""

    space: str
    space_name: str
    seed: int
    requested: int
    constraints: dict[str, list[int | float]]
    samples: list[SampleRecord]
    statistics: SampleStats


@dataclass(frozen=True)
class FitResult:
    """`archspec fit`: the scaled spec (as the text to write) and how close it came."""

    source: str
    name: str
    scale: str
    target_flops: int | None
    target_params: int | None
    depths: list[int]
    widths: list[int]
    new_depths: list[int]
    new_widths: list[int]
    flops: int
    params: int
    new_flops: int
    new_params: int
    new_macs: int
    text: str
