"""Source -> plan, with every problem located in the file it came from."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Union

from archspec.errors import Mark, Problem, SpecError, format_path
from archspec.lang.schema import Spec
from archspec.lang.sources import apply_override, load_document
from archspec.lang.validate import validate
from archspec.lang.yamldoc import Document
from archspec.plan.ops import Plan
from archspec.plan.planner import make_plan
from archspec.plan.walker import PlanError

# What names a spec: a path, a stock spec name, or the spec itself as a mapping.
Source = Union[str, "os.PathLike[str]", Mapping[str, Any], Document]
InputSize = int | tuple[int, int]


def size_override(input_size: InputSize) -> tuple[str, str]:
    """The `--set` override that sets the input size, and how messages name it."""
    if isinstance(input_size, int):
        return f"input.size={input_size}", f"--size {input_size}"
    height, width = input_size
    return f"input.size=[{height}, {width}]", f"--size {height}x{width}"


def check_arguments(overrides: object = (), input_size: object = None) -> None:
    """TypeError naming the argument for `overrides` that are not a list of `KEY=VALUE` strings and an
    `input_size` that is not a whole number or a (height, width) pair of them: a float or a string would
    otherwise be read as something else (`"32"` as the pair (3, 2))."""
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Sequence):
        raise TypeError(f"overrides must be a list of 'KEY=VALUE' strings, not {type(overrides).__name__}")
    wrong = [item for item in overrides if not isinstance(item, str)]
    if wrong:
        raise TypeError(f"overrides must be 'KEY=VALUE' strings; got {type(wrong[0]).__name__} {wrong[0]!r}")
    if input_size is None or _whole(input_size):
        return
    if isinstance(input_size, (tuple, list)) and len(input_size) == 2 and all(_whole(n) for n in input_size):
        return
    kind = f"a {type(input_size).__name__} of {len(input_size)}" if isinstance(input_size, (tuple, list)) else None
    raise TypeError(
        f"input_size must be an int or a (height, width) pair of ints, not {kind or type(input_size).__name__}"
    )


def source_label(source: Source, plan: Plan) -> str:
    """How messages name a spec: its path or stock name as given, else (a mapping, a checkpoint's spec) its name."""
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else plan.spec.name


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_plan(source: Source, *, overrides: Sequence[str] = (), input_size: InputSize | None = None) -> Plan:
    """Resolve a spec (path, stock name or mapping) into its plan; every problem is a located SpecError."""
    check_arguments(overrides, input_size)
    doc = load_document(source, overrides)
    if input_size is not None:
        doc = apply_override(doc, *size_override(input_size))
    return plan_document(doc)


def plan_document(doc: Document, spec: Spec | None = None) -> Plan:
    """Validate a resolved document (unless `spec` is its validated form already) and plan it; problems point
    into the document."""
    try:
        return _plan_located(doc, spec)
    except SpecError as exc:
        if not doc.overrides:
            raise
        raise _blame_overrides(doc, exc) from None


def _plan_located(doc: Document, spec: Spec | None) -> Plan:
    if spec is None:
        spec = validate(doc)
    try:
        return make_plan(spec)
    except PlanError as exc:
        raise SpecError(
            sorted((locate(doc, p.path, p.message, key=p.key) for p in exc.problems), key=file_order)
        ) from None


def _blame_overrides(doc: Document, exc: SpecError) -> SpecError:
    """`exc` with each problem that the document's overrides brought located at the override that brought it.

    A problem located in a file (a field the file writes, refused once an override changed the block kind, a limit
    an override's value pushed the network past) is blamed on the first override after which its field has a
    problem, when the document without the overrides had none there.
    """
    marks = {mark for _, _, mark, _ in doc.overrides}
    pending = {p.path for p in exc.problems if p.mark not in marks}
    if not pending or doc.before_overrides is None:
        return exc
    cause: dict[str, Mark | None] = {}  # None: brought by an override that takes no blame, left where it is
    before = _problem_fields(doc, 0)
    for count, (_, _, mark, blame) in enumerate(doc.overrides, start=1):
        now = {p.path for p in exc.problems} if count == len(doc.overrides) else _problem_fields(doc, count)
        if before is None or now is None:  # the file cannot be read again: leave the problems where they are
            return exc
        for path in pending - before - cause.keys():
            if path in now:
                cause[path] = mark if blame else None
        if not pending - cause.keys():
            break
        before = now
    problems = [p if (at := cause.get(p.path)) is None else replace(p, mark=at, via=()) for p in exc.problems]
    return SpecError(sorted(problems, key=file_order), exc.code)


def _problem_fields(doc: Document, count: int) -> set[str] | None:
    """The fields with a problem in `doc` as it was before its overrides, with the first `count` of them applied
    again (none when it plans); None when that document cannot be made again."""
    assert doc.before_overrides is not None
    try:
        replayed = doc.before_overrides()
        for item, label, _, blame in doc.overrides[:count]:
            replayed = apply_override(replayed, item, label, blame=blame)
    except (SpecError, OSError):
        return None
    try:
        _plan_located(replayed, None)
    except SpecError as exc:
        return {p.path for p in exc.problems}
    return set()


def locate(doc: Document, path: tuple[str | int, ...], message: str, *, key: bool = False) -> Problem:
    return Problem(doc.mark_for(path, key=key), format_path(path), message)


def file_order(problem: Problem) -> tuple[int, int]:
    return (problem.mark.line or 0, problem.mark.column or 0)
