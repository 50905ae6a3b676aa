"""Pydantic errors of the space's own models (distributions, constraints) as located one-line problems.

The spec's models have their own converter (`archspec.lang.validate`); these models are few and
small, so their messages are written here, in the same words where the two meet.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from archspec.errors import Problem, SpecError, shorten
from archspec.lang.validate import describe_value, unknown_key
from archspec.lang.yamldoc import Document
from archspec.plan.load import locate

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def describe(value: object, raw: str | None = None) -> str:
    """A value as a message names it: `the text 'a'`, `the number 1.5`, `a mapping`."""
    if isinstance(value, bool):
        return f"the boolean `{raw or str(value).lower()}`"
    if isinstance(value, int):
        return f"the number {shorten(raw or repr(value), 24)}"
    return describe_value(value, raw)


def validate_model(model: type[M], data: Any, doc: Document, path: Path) -> M:
    """`model.model_validate(data)`; a SpecError whose problems are located under `path` if it fails."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_problems(model, data, exc, doc, path)) from None


def _data_loc(data: Any, loc: tuple[Any, ...], missing: bool) -> tuple[Path, bool]:
    """The part of a pydantic error's location that points into the data (or, for a `missing` key, names it),
    and whether a union's member labels (`int`, `float`: which member of `int | float` failed) followed it;
    users see the first only."""
    node: Any = data
    kept: list[str | int] = []
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and (part in node or missing):
            kept.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
        else:
            return tuple(kept), True
    return tuple(kept), False


def _problems(model: type[BaseModel], data: Any, exc: ValidationError, doc: Document, path: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Path, str]] = set()
    for error in exc.errors(include_url=False):
        loc, union = _data_loc(data, error["loc"], error["type"] == "missing")
        where = path + loc
        kind = error["type"]
        value = error.get("input")
        raw = doc.raw.get(where)
        if kind == "extra_forbidden":
            message = unknown_key(str(loc[-1]), sorted(model.model_fields))
        elif kind == "missing":
            message = "required field is missing"
        elif union and kind in ("int_type", "int_from_float", "float_type"):
            message = f"expected a number, got {describe(value, raw)}"
        elif kind in ("int_type", "int_from_float"):
            message = f"expected an integer, got {describe(value, raw)}"
        elif kind in ("float_type", "int_parsing", "float_parsing"):
            message = f"expected a number, got {describe(value, raw)}"
        elif kind == "bool_type":
            message = f"expected true or false, got {describe(value, raw)}"
        elif kind == "list_type":
            message = f"expected a list, got {describe(value, raw)}"
        elif kind == "literal_error":
            message = f"got {describe(value, raw)}; expected one of {error.get('ctx', {}).get('expected', '')}"
        elif kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
            ctx = error.get("ctx") or {}
            bound, words = next((ctx[k], w) for k, w in _BOUNDS.items() if k in ctx)
            message = f"expected a value {words} {bound}, got {describe(value, raw)}"
        elif kind == "too_short" and isinstance(value, list) and not value:
            message = "expected at least one value, got an empty list"
        else:
            message = error["msg"].removeprefix("Value error, ")
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(locate(doc, where, message, key=kind == "extra_forbidden"))
    return problems


_BOUNDS = {"gt": "greater than", "ge": "of at least", "le": "of at most", "lt": "less than"}
