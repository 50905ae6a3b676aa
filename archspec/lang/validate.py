"""Located document -> validated Spec, with Pydantic's errors turned into located problems."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from archspec.errors import Problem, SpecError, format_path, shorten
from archspec.lang.blocks import BLOCK_NAMES, BLOCK_PARAMS, BlockParams, kinds_taking
from archspec.lang.schema import Spec
from archspec.lang.yamldoc import Document

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

FieldPath = tuple[str | int, ...]

_BOOL_WORDS = "yes/no/on/off/true/false"
# The plan walks every block; past this a spec is a typo (ResNet-1202 has 600 blocks), and
# resolving it would take minutes before any other check could speak.
MAX_BLOCKS = 10_000
# The tags of the schema's discriminated unions; Pydantic puts them in error locations.
_UNION_TAGS = {"list", "generator", "on", "off", "name", *BLOCK_NAMES}
_BOUNDS = {
    "greater_than_equal": ("ge", "of at least"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "of at most"),
    "less_than": ("lt", "less than"),
}


def validate(doc: Document) -> Spec:
    """Validate a resolved document; raise SpecError listing every problem with its place."""
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        problems = _problems(doc, exc)
        # In the order of the file, as a reader goes through it.
        raise SpecError(sorted(problems, key=lambda p: (p.mark.line or 0, p.mark.column or 0))) from None
    _check_size(doc, spec)
    return spec


def _check_size(doc: Document, spec: Spec) -> None:
    if not isinstance(spec.stages, list):
        return  # a generator bounds its own depth
    total = 0
    for index, stage in enumerate(spec.stages):
        total += stage.depth
        if total > MAX_BLOCKS:
            path = ("stages", index, "depth")
            raise SpecError(
                Problem(
                    doc.mark_for(path),
                    format_path(path),
                    f"the stages add up to {shorten(str(total), 24)} blocks; "
                    f"archspec resolves at most {MAX_BLOCKS:,} (ResNet-1202 has 600)",
                )
            )


def _problems(doc: Document, exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[FieldPath, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(doc.data, error["loc"], error["type"])
        message = _message(doc, path, error)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        key_error = error["type"] in ("extra_forbidden", "missing")
        mark = doc.mark_for(path[:-1] if error["type"] == "missing" else path, key=key_error)
        problems.append(Problem(mark, format_path(path), message))
    return problems


def _data_path(data: dict[str, Any], loc: FieldPath, kind: str) -> FieldPath:
    """Pydantic's loc, cut to the parts that exist in the data (it adds union branch names)."""
    path: list[str | int] = []
    node: Any = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part in _UNION_TAGS and not (isinstance(node, dict) and part in node):
            continue  # the branch of a tagged union, not a key of the data
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if present:
            node = node[part]
        elif last and kind == "missing" and isinstance(node, dict):
            pass
        else:
            break
        path.append(part)
    return tuple(path)


def _model_at(path: FieldPath) -> type[BaseModel] | None:
    """The model whose fields are valid at `path` (for "did you mean"), following list items and union branches."""
    candidates: list[tuple[type[BaseModel], bool]] = [(Spec, False)]
    for part in path:
        if isinstance(part, int):
            candidates = [(model, False) for model, in_list in candidates if in_list]
            continue
        found = [(model, in_list) for model, in_list in candidates if not in_list and part in model.model_fields]
        if not found:
            return None
        candidates = _inner_models(found[0][0].model_fields[part].annotation, False)
    direct = [model for model, in_list in candidates if not in_list]
    return direct[0] if direct else None


def _inner_models(annotation: Any, in_list: bool) -> list[tuple[type[BaseModel], bool]]:
    """Every model inside a field's annotation, each with whether it is reached through a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, in_list)]
    origin = getattr(annotation, "__origin__", None)
    through = in_list or origin is list
    found: list[tuple[type[BaseModel], bool]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _inner_models(arg, through)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        found += _inner_models(meta, in_list)
    if not found and origin not in (None, annotation, list):
        found = _inner_models(origin, in_list)
    return found


def _block_model(doc: Document, path: FieldPath) -> type[BlockParams] | None:
    """The parameters model of the block mapping at `path`, if `path` is a `block:` mapping of a known kind."""
    if not path or path[-1] != "block":
        return None
    node: Any = doc.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    kind = node.get("type") if isinstance(node, dict) else None
    return BLOCK_PARAMS.get(kind) if isinstance(kind, str) else None


def _choices(names: tuple[str, ...]) -> str:
    quoted = [repr(name) for name in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _describe(doc: Document, path: FieldPath, value: Any) -> str:
    raw = doc.raw.get(path)
    if isinstance(value, bool):
        written = raw if raw is not None else str(value).lower()
        return f"the boolean `{written}` (YAML reads {_BOOL_WORDS} as booleans)"
    return describe_value(value, raw)


def describe_value(value: object, raw: str | None = None) -> str:
    """A value as a message names it: `the text 'a'`, `the number 1.5`, `a mapping`; `raw` is how
    the YAML wrote it, where known."""
    if isinstance(value, float):
        return f"the number {shorten(raw or str(value), 24)}"
    if isinstance(value, str):
        return f"the text {shorten(repr(value))}"
    if isinstance(value, list):
        if all(isinstance(v, (int, float, str)) for v in value) and len(repr(value)) <= 30:
            return repr(value)
        return f"a list of {len(value)} {'entry' if len(value) == 1 else 'entries'}"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return shorten(repr(value), 24)


def unknown_key(key: str, valid: list[str]) -> str:
    """The message for a key that is not one of `valid`: the closest one, or all of them."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`?" if close else f"valid keys here: {', '.join(valid)}"
    return f"unknown key `{shorten(key)}`; {hint}"


def _message(doc: Document, path: FieldPath, error: ErrorDetails) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        block = _block_model(doc, path[:-1])
        if block is not None:
            valid = sorted(block.model_fields)
            takers = kinds_taking(key)
            if takers:
                return f"{key} shapes {takers} blocks only, not {block.kind_name()} (its keys: {', '.join(valid)})"
            return unknown_key(key, valid)
        model = _model_at(path[:-1])
        return unknown_key(key, sorted(model.model_fields) if model else [])
    if kind == "union_tag_invalid" and path and path[-1] == "block":
        choices = _choices(BLOCK_NAMES)
        if isinstance(value, dict) and "type" in value:
            return f"got {_describe(doc, (*path, 'type'), value['type'])} for `type`; expected one of {choices}"
        return (
            f"expected a block kind's name or a mapping with its `type` (one of {choices}), "
            f"got {_describe(doc, path, value)}"
        )
    if kind == "missing":
        return "required field is missing"
    if kind in ("int_type", "int_from_float"):
        return f"expected an integer, got {_describe(doc, path, value)}"
    if kind == "float_type":
        return f"expected a number, got {_describe(doc, path, value)}"
    if kind == "bool_type":
        return f"expected true or false, got {_describe(doc, path, value)}"
    if kind == "string_type":
        return f"expected text, got {_describe(doc, path, value)}"
    if kind == "list_type":
        if path == ("stages",):
            return (
                "expected a list of stages or a generator such as `{regnet: {...}}`, "
                f"got {_describe(doc, path, value)}"
                + (
                    "; with `extends`, a mapping keyed by stage index from 0 (`3: {groups: 32}`) changes those stages"
                    if isinstance(value, dict)
                    else ""
                )
            )
        return f"expected a list, got {_describe(doc, path, value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if path and path[-1] == "se":
            return (
                "expected squeeze-and-excitation settings (a mapping such as {reduction: 16}) or false, "
                f"got {_describe(doc, path, value)}"
            )
        message = f"expected a mapping of keys to values, got {_describe(doc, path, value)}"
        model = _model_at(path)
        if isinstance(value, str) and model is not None and "type" in model.model_fields and path:
            # `stem: cifar` is a natural slip for `stem: {type: cifar}`.
            message += f"; write `{path[-1]}: {{type: {value}}}`"
        return message
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"got {_describe(doc, path, value)}; expected one of {expected}"
    ctx = error.get("ctx") or {}
    if kind in ("too_short", "too_long") and isinstance(value, list):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        need = f"at least {bound}" if kind == "too_short" else f"at most {bound}"
        got = "an empty list" if not value else f"{len(value)}"
        return f"expected a list of {need} {'entry' if bound == 1 else 'entries'}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"must be one line of text, without line breaks or control characters; got {_describe(doc, path, value)}"
    if kind == "string_too_short":
        return (
            "expected text, got an empty string"
            if ctx.get("min_length") == 1
            else f"expected at least {ctx.get('min_length')} characters"
        )
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        bound = ctx.get(name)
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return f"expected a value {words} {bound}, got {_describe(doc, path, value)}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            if error["loc"] and not isinstance(value, dict):
                message += f", got {_describe(doc, path, value)}"
    if message.startswith("Input should be"):
        message = (
            "expected a value that is" + message[len("Input should be") :] + f", got {_describe(doc, path, value)}"
        )
    return message
