"""Reading a samples.json back: every field checked, so that a file edited by hand (or not written by archspec
at all) ends in one located line instead of a chart of nonsense or an internal error.

The file is read only when it is a regular file of a bounded size: a FIFO, a device (`/dev/zero`) or a huge
file is refused before a byte is read. JSON's NaN and Infinity, integers of thousands of digits, negative
counts and values of the wrong type are refused at their field (`samples.3.params`).
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from archspec.errors import Mark, Problem, SpecError, format_path, shorten
from archspec.space.results import InvalidDraws, SampleRecord, SampleRun, SampleStats

# 100,000 samples take about 50 MB; anything much larger is not a samples file.
MAX_BYTES = 512 << 20
# The largest count taken (a network's FLOPs are far below it).
MAX_COUNT = 10**18
_COUNTS = ("params", "flops", "macs", "activations", "depth", "stages")
_STATS = ("drawn", "accepted", "duplicates", "invalid", "refused")


class _Odd:
    """A JSON number Python should not hold: NaN, Infinity, or an integer of too many digits."""

    def __init__(self, words: str):
        self.words = words


def _constant(name: str) -> _Odd:
    return _Odd(f"{name} (not a finite number)")


def _integer(text: str) -> int | _Odd:
    return int(text) if len(text) <= 24 else _Odd(f"an integer of {len(text):,} digits")


def _number(text: str) -> float | _Odd:
    value = float(text)
    return value if math.isfinite(value) else _Odd(f"{shorten(text, 24)} (too large)")


def read_samples(path: str | os.PathLike[str], name: str) -> SampleRun:
    """The run a samples.json holds (`name` is how messages show the file); a located SpecError otherwise."""
    target = Path(path)
    data = _load(target, name)
    check = _Checker(name)
    return check.run(data)


def _load(target: Path, shown: str) -> Any:
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise SpecError(
            Problem(Mark(shown), "", "no such file; give a samples.json written by archspec sample, or its folder")
        ) from None
    except (OSError, ValueError) as exc:
        raise SpecError(
            Problem(Mark(shown), "", f"cannot read the file: {getattr(exc, 'strerror', None) or exc}")
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(
            Problem(Mark(shown), "", "is not a regular file (a device, FIFO or socket); give a samples.json")
        )
    if info.st_size > MAX_BYTES:
        raise SpecError(Problem(Mark(shown), "", f"file is larger than {MAX_BYTES >> 20} MiB; not a samples file"))
    try:
        # O_NONBLOCK: a file swapped for a FIFO since the check still cannot block the open.
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            Problem(Mark(shown), "", f"cannot read the file: {getattr(exc, 'strerror', None) or exc}")
        ) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(Problem(Mark(shown), "", f"file is larger than {MAX_BYTES >> 20} MiB; not a samples file"))
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_number)
    except json.JSONDecodeError as exc:
        raise SpecError(Problem(Mark(shown, exc.lineno, exc.colno), "", f"not JSON: {exc.msg}")) from None
    except RecursionError:
        raise SpecError(Problem(Mark(shown), "", "not a samples file: its values nest far too deep")) from None


def _unreadable(shown: str, exc: Exception) -> SpecError:
    return SpecError(Problem(Mark(shown), "", f"cannot read the file: {getattr(exc, 'strerror', None) or exc}"))


class _Checker:
    """Checks one parsed samples.json field by field; the first problem is raised, at its field."""

    def __init__(self, shown: str):
        self.shown = shown

    def fail(self, path: tuple[str | int, ...], message: str) -> SpecError:
        return SpecError(Problem(Mark(self.shown), format_path(path), message))

    def mapping(self, value: Any, path: tuple[str | int, ...], keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            where = "not a samples file written by archspec sample: " if not path else ""
            raise self.fail(path, f"{where}expected a mapping, got {_kind(value)}")
        for key in keys:
            if key not in value:
                raise self.fail((*path, key), "missing; not a samples file written by archspec sample")
        return value

    def text(self, value: Any, path: tuple[str | int, ...]) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected text, got {_kind(value)}")
        return value

    def count(self, value: Any, path: tuple[str | int, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a count (an integer of at least 0), got {_kind(value)}")
        if not 0 <= value <= MAX_COUNT:
            raise self.fail(path, f"expected a count from 0 to {MAX_COUNT:.0e}, got {value}")
        return value

    def number(self, value: Any, path: tuple[str | int, ...]) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        return value

    def run(self, data: Any) -> SampleRun:
        keys = ("space", "space_name", "seed", "requested", "constraints", "samples", "statistics")
        top = self.mapping(data, (), keys)
        constraints = self.mapping(top["constraints"], ("constraints",), ())
        for name, bound in constraints.items():
            if not (isinstance(bound, list) and len(bound) == 2):
                raise self.fail(("constraints", name), f"expected [low, high], got {_kind(bound)}")
            for i, end in enumerate(bound):
                self.number(end, ("constraints", name, i))
        if not isinstance(top["samples"], list):
            raise self.fail(("samples",), f"expected a list of samples, got {_kind(top['samples'])}")
        if not top["samples"]:
            raise self.fail(("samples",), "the file holds no samples; there is nothing to draw")
        samples = [self.record(item, ("samples", i)) for i, item in enumerate(top["samples"])]
        return SampleRun(
            self.text(top["space"], ("space",)),
            self.text(top["space_name"], ("space_name",)),
            self.count(top["seed"], ("seed",)),
            self.count(top["requested"], ("requested",)),
            constraints,
            samples,
            self.stats(top["statistics"], ("statistics",)),
        )

    def record(self, value: Any, path: tuple[str | int, ...]) -> SampleRecord:
        item = self.mapping(value, path, ("name", "file", "draw", "fields", *_COUNTS))
        fields = self.mapping(item["fields"], (*path, "fields"), ())
        for key, drawn in fields.items():
            if not isinstance(drawn, (str, bool, int, float)):
                raise self.fail((*path, "fields", key), f"expected a drawn value, got {_kind(drawn)}")
        counts = {key: self.count(item[key], (*path, key)) for key in _COUNTS}
        return SampleRecord(
            self.text(item["name"], (*path, "name")),
            self.text(item["file"], (*path, "file")),
            self.count(item["draw"], (*path, "draw")),
            fields,
            **counts,
        )

    def stats(self, value: Any, path: tuple[str | int, ...]) -> SampleStats:
        item = self.mapping(value, path, (*_STATS, "refused_by", "invalid_by"))
        drawn, accepted, duplicates, invalid_count, refused = (self.count(item[key], (*path, key)) for key in _STATS)
        refused_by = self.mapping(item["refused_by"], (*path, "refused_by"), ())
        for key, number in refused_by.items():
            self.count(number, (*path, "refused_by", key))
        if not isinstance(item["invalid_by"], list):
            raise self.fail((*path, "invalid_by"), f"expected a list, got {_kind(item['invalid_by'])}")
        invalid = []
        for i, entry in enumerate(item["invalid_by"]):
            where = (*path, "invalid_by", i)
            fields = self.mapping(entry, where, ("field", "count", "example"))
            invalid.append(
                InvalidDraws(
                    self.text(fields["field"], (*where, "field")),
                    self.count(fields["count"], (*where, "count")),
                    self.text(fields["example"], (*where, "example")),
                )
            )
        return SampleStats(drawn, accepted, duplicates, invalid_count, refused, refused_by, invalid)


def _kind(value: Any) -> str:
    """A value as a message names it, without echoing more than a few characters of it."""
    if isinstance(value, _Odd):
        return value.words
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {shorten(repr(value), 24)}"
    if isinstance(value, str):
        return f"the text {shorten(repr(value), 24)}"
    if isinstance(value, dict):
        return "a mapping"
    return "a list"
