"""The populations of a study: which spec files each SAMPLES argument stands for, under which label.

An argument is a folder written by `archspec sample` (or its samples.json), a spec file, a glob of spec
files, or a stock spec name. Each argument is one population, labelled by the folder's name (a sample
folder, or the folder the spec files lie in) unless `--label` names it; arguments with the same label
make one population (the files of one folder, as a shell expands a glob).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.space.write import is_samples_file, read_samples

# A label becomes a folder under DIR/members/ and a column of the summary.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Member:
    """One spec to train: its population, its name in the population, and the file (or stock name) to load."""

    population: str
    name: str
    spec: str


@dataclass(frozen=True)
class Population:
    label: str
    source: str
    members: tuple[Member, ...]


def _problem(argument: str, message: str, code: int = 1) -> SpecError:
    return SpecError(Problem(Mark(shorten(argument, 200)), "SAMPLES", message), code=code)


def _from_samples(argument: str, label: str | None) -> tuple[str, list[str]]:
    run = read_samples(argument)
    folder = Path(argument) if Path(argument).is_dir() else Path(argument).parent
    files = []
    for record in run.samples:
        path = folder / record.file
        if not path.is_file():
            raise _problem(argument, f"the sample {record.file} listed in samples.json is missing from the folder")
        files.append(str(path.resolve()))
    return label or folder.resolve().name, files


def _from_files(argument: str, label: str | None) -> tuple[str, list[str]]:
    if glob.has_magic(argument):
        matches = sorted(p for p in glob.glob(argument) if Path(p).is_file() and p.endswith(_SPEC_SUFFIXES))
        if not matches:
            raise _problem(argument, "the pattern matches no .yaml spec file")
        return label or Path(matches[0]).resolve().parent.name, [str(Path(p).resolve()) for p in matches]
    path = Path(argument)
    if path.is_dir():
        files = sorted(str(p.resolve()) for p in path.iterdir() if p.is_file() and p.suffix in _SPEC_SUFFIXES)
        if not files:
            raise _problem(argument, "the folder holds no samples.json and no .yaml spec file")
        return label or path.resolve().name, files
    if path.is_file():
        return label or path.resolve().parent.name, [str(path.resolve())]
    if "/" in argument or argument.endswith(_SPEC_SUFFIXES):
        raise _problem(argument, "no such file or folder")
    return label or argument, [argument]  # a stock spec name; load_plan says so if it is none


def populations(arguments: Sequence[str], labels: Sequence[str] = ()) -> list[Population]:
    """One population per argument, labelled by `labels` in order (the rest by their folders' names)."""
    if len(labels) > len(arguments):
        raise SpecError(
            Problem(
                Mark(f"--label {shorten(labels[len(arguments)])}"),
                "label",
                f"{len(labels)} labels for {len(arguments)} populations; give at most one --label per SAMPLES",
            ),
            code=2,
        )
    for given in labels:
        if not LABEL.fullmatch(given):
            raise SpecError(
                Problem(
                    Mark(f"--label {shorten(given)}"),
                    "label",
                    "a label names a folder: letters, digits, '.', '_' and '-', starting with a letter or digit",
                ),
                code=2,
            )
    found: dict[str, Population] = {}
    for index, argument in enumerate(arguments):
        label = labels[index] if index < len(labels) else None
        if is_samples_file(argument):
            name, files = _from_samples(argument, label)
        else:
            name, files = _from_files(argument, label)
        if not LABEL.fullmatch(name):
            raise _problem(argument, f"the label {shorten(name)!r} cannot name a folder; give one with --label")
        # Arguments with one label are one population: spec files of one folder (a glob the shell expanded).
        previous = found.get(name)
        members = (previous.members if previous else ()) + tuple(
            Member(name, _member_name(spec), spec) for spec in files if previous is None or spec not in _specs(previous)
        )
        names = [m.name for m in members]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise _problem(
                argument,
                f"population {name} has two members named {twice[0]}; each member's results are kept under its "
                "name (give the populations their own --label)",
            )
        found[name] = Population(name, previous.source if previous else argument, members)
    return list(found.values())


def _specs(population: Population) -> set[str]:
    return {member.spec for member in population.members}


def _member_name(spec: str) -> str:
    path = Path(spec)
    return path.stem if path.suffix in _SPEC_SUFFIXES else spec
