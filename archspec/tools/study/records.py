"""A study's folder: `study.json` (data and recipe), `results.jsonl` (one record per finished member, appended as
each finishes), `results.csv` (the same as a table) and `members/POPULATION/NAME/` (each member's curves).

A record is one line written with a single append, so a study killed at any moment leaves every finished
record whole; at most a torn last line, which the next `--resume` drops before it appends.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.files import atomic_write
from archspec.tools.train.recipe import Recipe

STUDY_FILE = "study.json"
RESULTS_FILE = "results.jsonl"
CSV_FILE = "results.csv"
MEMBERS_FOLDER = "members"
STUDY_FORMAT = "archspec-study"
LOCK_FILE = ".archspec-study.lock"


@dataclass(frozen=True)
class MemberRecord:
    """One finished member: `error` is the held-out top-1 error after the last epoch, as a fraction; `loss` the
    last epoch's training loss; a failed member has `reason` and no error."""

    population: str
    name: str
    spec: str
    status: str
    error: float | None
    loss: float | None
    params: int
    flops: int
    epochs: int
    seconds: float
    reason: str | None = None

    def line(self) -> str:
        data = asdict(self)
        # JSON has no NaN: a loss that diverged is recorded as null, with the reason beside it.
        for key in ("error", "loss"):
            if isinstance(data[key], float) and not math.isfinite(data[key]):
                data[key] = None
        return json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n"


RECORD_KEYS = tuple(f.name for f in fields(MemberRecord))


def _problem(path: Path, message: str, line: int | None = None) -> SpecError:
    return SpecError(Problem(Mark(shorten(str(path), 200), line), "out", message))


def read_records(path: Path, *, repair: bool = False) -> list[MemberRecord]:
    """The records of `results.jsonl`. A last line without its newline is a write that was cut short; with
    `repair` it is removed from the file (nothing else is touched), without it it is left out."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _problem(path, f"cannot read the results: {exc.strerror or exc}") from None
    complete = raw[: raw.rfind(b"\n") + 1]
    if repair and len(complete) < len(raw):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    records = []
    for number, text in enumerate(complete.decode("utf-8", "replace").splitlines(), 1):
        try:
            data = json.loads(text)
            records.append(MemberRecord(**{key: data.get(key) for key in RECORD_KEYS}))
        except (ValueError, TypeError, AttributeError):
            raise _problem(path, "not a record of archspec study", number) from None
        if not isinstance(data, dict) or not all(key in data for key in RECORD_KEYS[:-1]):
            raise _problem(path, "not a record of archspec study", number)
    return records


def append_record(path: Path, record: MemberRecord) -> None:
    """Append one record with a single write, and flush it to the disk before the next member is counted."""
    data = record.line().encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_csv(path: Path, records: Sequence[MemberRecord]) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, RECORD_KEYS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = json.loads(record.line())
        writer.writerow({key: "" if row[key] is None else row[key] for key in RECORD_KEYS})
    text = table.getvalue()
    atomic_write(path, lambda handle: handle.write(text.encode()), force=True)


def study_record(data: str, recipe: Recipe, threads: int) -> dict[str, Any]:
    return {"format": STUDY_FORMAT, "version": 1, "data": data, "recipe": asdict(recipe), "threads": threads}


def prepare_folder(out: Path, record: dict[str, Any], *, resume: bool, force: bool) -> None:
    """Check that `out` may take this study (a new study never writes over a previous one unasked) and record it.

    A resumed study must have the previous one's data, recipe and threads per member, so that every member
    of it was trained alike."""
    if out.exists() and not out.is_dir():
        raise _problem(out, "is a file; give a folder")
    if not out.exists() and not out.parent.is_dir():
        raise _problem(out, f"folder {shorten(str(out.parent), 200)!r} does not exist")
    study_file = out / STUDY_FILE
    if resume:
        if not study_file.is_file():
            raise _problem(out, "holds no study to resume (no study.json); start one without --resume")
        try:
            previous = json.loads(study_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _problem(out, f"study.json is not readable ({shorten(str(exc))})") from None
        if not isinstance(previous, dict) or previous.get("format") != STUDY_FORMAT:
            raise _problem(out, "study.json is not the record of an archspec study")
        changes = [
            f"{key} {json.dumps(previous.get(key))} (now {json.dumps(value)})"
            for key, value in record.items()
            if previous.get(key) != value
        ]
        if changes:
            raise _problem(
                out, f"the study was started with {'; '.join(changes)}; resume with the same options, or a new --out"
            )
        return
    if out.is_dir() and any(entry.name != LOCK_FILE for entry in out.iterdir()):
        if not force:
            if study_file.exists():
                raise _problem(out, "holds a study; pass --resume to continue it, or --force to start it over")
            raise _problem(out, "is not empty; give a new or empty folder, or pass --force to write into it")
        for name in (RESULTS_FILE, CSV_FILE):
            (out / name).unlink(missing_ok=True)
    out.mkdir(exist_ok=True)
    (out / MEMBERS_FOLDER).mkdir(exist_ok=True)
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(study_file, lambda handle: handle.write(text.encode()), force=True)
