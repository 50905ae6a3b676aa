"""Where specs come from: stock names, files, mappings, `extends` chains and `--set` overrides.

Everything here works on located documents (see `yamldoc`), so a value keeps
pointing at the file and line it came from through inheritance and overrides.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.lang import yamldoc
from archspec.lang.blocks import BLOCK_PARAMS, kinds_taking
from archspec.lang.schema import Spec
from archspec.lang.yamldoc import Document

_MISSING = object()
# The longest `extends` chain followed (stock specs extend one or two files).
MAX_EXTENDS = 64
# Keys that describe one file and are not inherited through `extends`.
_NOT_INHERITED = ("name", "description")
T = TypeVar("T")


def stock_dir() -> Path:
    """The folder of stock specs: inside the installed package, or the checkout's `specs/`."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "specs"
    if packaged.is_dir():
        return packaged
    return package.parent / "specs"


def stock_names() -> list[str]:
    """Names of the stock specs, sorted."""
    return sorted(p.stem for p in stock_dir().glob("*.yaml"))


def _display(path: Path) -> str:
    """A path as messages show it, whatever the working folder: a stock spec as `specs/NAME.yaml` (the name it
    ships under), any other file as it was reached (a path in `extends` joined to its file's folder)."""
    try:
        if path.resolve().parent == stock_dir().resolve():
            return f"specs/{path.name}"
    except (OSError, ValueError, RuntimeError):
        pass
    return os.path.normpath(path)


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or os.sep in ref


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists() and not path.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    # A name with a NUL byte, or one too long for the file system, names no file.
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def locate(ref: str, base: Path | None = None) -> Path | None:
    """A file for `ref`: a path (relative to `base`'s folder when given), else a stock name; None if neither."""
    candidate = (base.parent / ref) if base is not None else Path(ref)
    if _is_file(candidate):
        return candidate
    if not _looks_like_path(ref):
        stock = stock_dir() / f"{ref}.yaml"
        if _is_file(stock):
            return stock
    return None


def read_file(path: Path, shown: str | None = None) -> Document:
    """Parse one spec file; I/O problems become SpecErrors."""
    shown = shown or _display(path)
    try:
        with open(path, "rb") as handle:
            # One byte past the limit is enough for the parser to refuse an oversized file.
            data = handle.read(yamldoc.MAX_BYTES + 1)
    except IsADirectoryError:
        raise SpecError(Problem(Mark(shown), "", "is a folder, not a spec file")) from None
    except OSError as exc:
        raise SpecError(Problem(Mark(shown), "", f"cannot read the file: {exc.strerror or exc}")) from None
    doc = yamldoc.parse(data, shown)
    _check_spec_keys(doc)
    return doc


# A space file's own key, beside the spec's (the space layer reads it).
_SPACE_KEYS = ("constraints",)


def _check_spec_keys(doc: Document) -> None:
    """A mapping none of whose top-level keys is a spec's is some other file: refuse it in one line that quotes
    nothing of it, so that a file named by mistake (or `extends: /etc/shadow`) never has its lines printed
    back as unknown keys."""
    if not doc.data or any(key in Spec.model_fields or key in _SPACE_KEYS for key in doc.data):
        return
    first = doc.key_marks.get((next(iter(doc.data)),), Mark(doc.source, 1, 1))
    raise SpecError(
        Problem(
            first,
            "",
            "not an archspec spec: none of its top-level keys is a key of a spec (such as block, stages or "
            "extends); its contents are not shown",
        )
    )


def _not_found(ref: str, base: Path | None = None) -> str:
    if _looks_like_path(ref) or _exists(Path(ref) if base is None else base.parent / ref):
        where = _display(base.parent / ref) if base is not None else ref
        if _exists(Path(where)):
            # Never opened: reading a FIFO would block, and a device (/dev/zero) never ends.
            return f"{shorten(where, 200)!r} is not a regular file (a device, FIFO or socket); a spec is a text file"
        relative = " (a path in `extends` is relative to the file that has it)" if base is not None else ""
        stem = Path(ref).stem
        hint = (
            f"; did you mean the stock spec `{stem}` (a name, without a path)?"
            if _is_file(stock_dir() / f"{stem}.yaml") and base is None
            else ""
        )
        return f"no spec file {shorten(where, 200)!r}{relative}{hint}"
    close = difflib.get_close_matches(ref, stock_names(), n=3, cutoff=0.6)
    if close:
        names = [f"`{name}`" for name in close]
        hint = "; did you mean " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]) + "?"
    else:
        hint = "; `archspec list` shows the stock specs"
    return f"no spec file or stock spec named {shorten(ref)!r}{hint}"


def load_document(
    source: str | os.PathLike[str] | Mapping[str, Any] | Document, overrides: Sequence[str] = ()
) -> Document:
    """Resolve a path, stock name or mapping into one document: `extends` merged, overrides applied."""
    if isinstance(source, Document):
        doc = source
    elif isinstance(source, (str, os.PathLike)):
        ref = os.fspath(source)
        path = locate(ref)
        if path is None:
            if _is_dir(Path(ref)):
                raise SpecError(Problem(Mark(shorten(ref, 200)), "", "is a folder, not a spec file"))
            raise SpecError(Problem(Mark(shorten(ref)), "", _not_found(ref)))
        doc = _resolve_file(path, ref if _is_file(Path(ref)) else _display(path), ())
    elif isinstance(source, dict):
        doc = _resolve_extends(yamldoc.from_mapping(source), None, ())
    else:
        raise SpecError(
            Problem(Mark("<spec>"), "", f"a spec is a path, a stock name or a mapping, not {type(source).__name__}")
        )
    if doc.before_overrides is None and not isinstance(source, Document):
        # Read again (rather than copied now) only when an override's problem is traced.
        doc.before_overrides = functools.partial(load_document, source)
    for item in overrides:
        doc = apply_override(doc, item)
    return doc


# The files an `extends` chain went through: each resolved path with the name messages show for it.
Chain = tuple[tuple[Path, str], ...]


def _resolve_file(path: Path, shown: str, chain: Chain) -> Document:
    doc = _resolve_extends(read_file(path, shown), path, (*chain, (path.resolve(), shown)))
    doc.data.setdefault("name", path.stem)
    return doc


def _resolve_extends(doc: Document, path: Path | None, chain: Chain) -> Document:
    parent_ref = doc.data.get("extends", _MISSING)
    if parent_ref is _MISSING or parent_ref is None:
        doc.data.pop("extends", None)
        return doc
    mark = doc.marks.get(("extends",), Mark(doc.source, 1, 1))
    if not isinstance(parent_ref, str) or not parent_ref:
        raise SpecError(Problem(mark, "extends", "expected the name of a stock spec or a path to a spec file"))
    parent_path = locate(parent_ref, path)
    if parent_path is None:
        raise SpecError(Problem(mark, "extends", _not_found(parent_ref, path)))
    if len(chain) >= MAX_EXTENDS:
        first = chain[0][1] if chain else doc.source
        raise SpecError(
            Problem(
                mark,
                "extends",
                f"the `extends` chain from {shorten(first, 100)} is longer than {MAX_EXTENDS} files; "
                "a spec extends a few at most",
            )
        )
    seen = dict(chain)
    if parent_path.resolve() in seen:
        names = " -> ".join([shown for _, shown in chain] + [seen[parent_path.resolve()]])
        raise SpecError(Problem(mark, "extends", f"`extends` makes a cycle: {names}"))
    try:
        parent = _resolve_file(parent_path, _display(parent_path), chain)
    except SpecError as exc:
        raise exc.via(mark) from None
    _index_into_lists(parent.data, doc, ())
    child = dict(doc.data)
    child.pop("extends")
    for key in _NOT_INHERITED:
        if key not in child:
            parent.data.pop(key, None)
    merged = Document(data={}, source=doc.source)
    replaced: set[tuple[str | int, ...]] = set()
    merged.data = _merge(parent.data, child, (), replaced)
    for table_name in ("marks", "key_marks", "raw"):
        parent_table, out = getattr(parent, table_name), getattr(merged, table_name)
        for key, value in parent_table.items():
            if any(key[:n] in replaced for n in range(len(key) + 1)):
                continue  # the child wrote its own value here
            # A parent's value remembers the `extends` line that brought it in.
            out[key] = replace(value, via=(*value.via, mark)) if isinstance(value, Mark) else value
        out.update(getattr(doc, table_name))
    return merged


def _index_into_lists(parent: Any, doc: Document, path: tuple[str | int, ...]) -> None:
    """Where the parent has a list and the child a mapping keyed by numbers (`stages: {3: {groups: 32}}`),
    make the child's mapping a set of changes to the parent's entries, keyed (and marked) by int: `_merge`
    then merges entry 3 into the parent's and keeps the others."""
    node = _at(doc.data, path)
    if isinstance(parent, dict) and isinstance(node, dict):
        for key in node:
            if key in parent:
                _index_into_lists(parent[key], doc, (*path, key))
        return
    if not (isinstance(parent, list) and isinstance(node, dict) and node):
        return
    if not all(isinstance(key, str) and key.isascii() and key.isdigit() for key in node):
        return  # not index keys: the mapping replaces the list, and validation says what is wrong

    def refuse(key: str, message: str) -> SpecError:
        mark = doc.key_marks.get((*path, key), doc.mark_for((*path, key)))
        return SpecError(Problem(mark, ".".join(map(str, (*path, int(key)))), message))

    seen: dict[int, str] = {}
    for key in node:
        index = int(key)
        if index in seen:
            raise refuse(key, f"index {index} is written twice, as {seen[index]} and {key}")
        seen[index] = key
        if index >= len(parent):
            raise refuse(
                key,
                f"index {index} is out of range: the parent's list has {len(parent)} entries "
                f"(0 to {len(parent) - 1}); to add entries, write the whole list",
            )
    changes = _IndexedChanges({int(key): value for key, value in node.items()})
    _set_at(doc.data, path, changes)
    _move_keys(doc.marks, path)
    _move_keys(doc.key_marks, path)
    _move_keys(doc.raw, path)
    for index in changes:
        _index_into_lists(parent[index], doc, (*path, index))


def _move_keys(table: dict[tuple[str | int, ...], T], under: tuple[str | int, ...]) -> None:
    """Paths below `under` whose next part is a number written as text, with that part as an int."""
    for key in [k for k in table if k[: len(under)] == under and len(k) > len(under)]:
        moved = (*under, int(key[len(under)]), *key[len(under) + 1 :])
        table[moved] = table.pop(key)


class _IndexedChanges(dict[int, Any]):
    """A child's changes to some entries of its parent's list, by index."""


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set_at(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    _at(data, path[:-1])[path[-1]] = value


def _merge(p: Any, c: Any, path: tuple[str | int, ...], replaced: set[tuple[str | int, ...]]) -> Any:
    """Child values over parent values: mappings merge key by key, anything else is replaced whole.

    `replaced` collects the paths where the child's value replaces the parent's, so
    that the parent's marks under them can be dropped.
    """
    if isinstance(p, dict) and isinstance(c, dict):
        result = {key: value for key, value in p.items() if key not in c}
        for key, value in c.items():
            if key in p:
                result[key] = _merge(p[key], value, (*path, key), replaced)
            else:
                result[key] = value
        return result
    if isinstance(p, list) and isinstance(c, _IndexedChanges):
        merged = list(p)
        for index, value in c.items():
            merged[index] = _merge(p[index], value, (*path, index), replaced)
        return merged
    replaced.add(path)
    return c


def _parse_override(item: str, label: str | None = None) -> tuple[list[str | int], Any, Mark]:
    mark = Mark(label or f"--set {item}")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(Problem(mark, "", "expected KEY=VALUE, for example --set stages.2.depth=36"))
    if any(ch in item for ch in "\r\n\x00"):
        # YAML would read a second line as something else, or drop it: refuse rather than guess.
        raise SpecError(
            Problem(
                mark, key, "a --set value is one line; write lists and mappings in flow style, like [1, 2] or {a: 1}"
            )
        )
    parts: list[str | int] = []
    for part in key.split("."):
        if not part:
            raise SpecError(Problem(mark, key, "empty part in the key; use dots between names, like head.num_classes"))
        # ASCII digits only: `²` or `٣` is a name, not an index.
        parts.append(int(part) if part.isascii() and part.isdigit() and len(part) < 10 else part)
    try:
        value = yamldoc.parse("value: " + text, mark.source).data.get("value") if text.strip() else None
    except SpecError as exc:
        raise SpecError(Problem(mark, key, exc.problems[0].message)) from None
    if not text.strip():
        raise SpecError(Problem(mark, key, "no value after `=`"))
    return parts, value, mark


def apply_override(doc: Document, item: str, label: str | None = None, *, blame: bool = True) -> Document:
    """Apply one `KEY=VALUE` (dotted key, YAML value); mappings merge, anything else replaces.

    `label` names the override in messages (default `--set KEY=VALUE`; `--size 16` for sizes). A problem the
    override brings elsewhere in the spec is reported at it, unless `blame` is false (a value the command implies,
    such as the shape `train --data` gives the input, which the user did not write: the problem stays where the
    spec is).
    """
    parts, value, mark = _parse_override(item, label)
    if not doc.overrides and doc.before_overrides is None:
        kept = copy.deepcopy(doc)
        doc.before_overrides = lambda: copy.deepcopy(kept)
    if parts[0] == "extends":
        # `extends` is resolved when the file is read, before any override applies.
        raise SpecError(Problem(mark, "extends", "cannot be changed with --set; write `extends:` in the spec file"))
    node: Any = doc.data
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise SpecError(Problem(mark, here, _index_message(part, node)))
            node = node[part]
        elif isinstance(node, dict):
            if isinstance(part, int):
                part = str(part)
            if node.get(part) is None:
                node[part] = {}
                created = (*parts[:depth], part)
                doc.marks[created] = doc.key_marks[created] = mark
            node = node[part]
        else:
            raise SpecError(Problem(mark, here, f"is a single value ({shorten(repr(node))}), it has no fields to set"))
        if not isinstance(node, (dict, list)):
            raise SpecError(Problem(mark, here, _single_value_message(node, parts, depth, item)))
    last = parts[-1]
    path = tuple(parts)
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise SpecError(Problem(mark, ".".join(map(str, parts)), _index_message(last, node)))
        node[last] = value
    else:
        last = str(last)
        old = node.get(last)
        # The same rule as `extends`: mappings merge key by key, anything else replaces.
        node[last] = _merge(old, value, (), set())
        path = (*parts[:-1], last)
    for table in (doc.marks, doc.key_marks):
        for key in [k for k in table if k[: len(path)] == path]:
            del table[key]
        table[path] = mark
    # The text the file wrote there is gone too: a message names the value the override gave.
    for key in [k for k in doc.raw if k[: len(path)] == path]:
        del doc.raw[key]
    if not isinstance(value, (dict, list)):
        doc.raw[path] = item.partition("=")[2].strip()
    doc.overrides.append((item, label, mark, blame))
    return doc


def _single_value_message(node: object, parts: list[str | int], depth: int, item: str) -> str:
    """Why `--set` cannot go below a scalar; under a block kind's name, the mapping that would set the field."""
    message = f"is a single value ({shorten(repr(node))}), it has no fields to set"
    if parts[depth] == "block" and isinstance(node, str) and depth + 2 == len(parts):
        knob, model = str(parts[-1]), BLOCK_PARAMS.get(node)
        if model is not None and knob in model.knobs():
            here = ".".join(str(p) for p in parts[: depth + 1])
            value = item.partition("=")[2].strip()
            message += f"; write the kind as a mapping: --set '{here}={{type: {node}, {knob}: {value}}}'"
        elif model is not None:
            takers = kinds_taking(knob)
            message += f"; {node} blocks take no {shorten(knob)}" + (f" ({takers} blocks do)" if takers else "")
    return message


def _index_message(part: str | int, node: list[Any]) -> str:
    if not node:
        return "is an empty list; there is no entry to set"
    if not isinstance(part, int):
        return f"is a list; use a number from 0 to {len(node) - 1}, not {part!r}"
    return f"index {part} is out of range: the list has {len(node)} entries (0 to {len(node) - 1})"
