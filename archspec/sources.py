"""Where specs come from: stock names, files, mappings, `extends` chains and `--set` overrides.

Everything here works on located documents (see `yamldoc`), so a value keeps
pointing at the file and line it came from through inheritance and overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

from archspec import yamldoc
from archspec.errors import Mark, Problem, SpecError
from archspec.yamldoc import Document

_MISSING = object()
# Keys that describe one file and are not inherited through `extends`.
_NOT_INHERITED = ("name", "description")


def stock_dir() -> Path:
    """The folder of stock specs: inside the installed package, or the checkout's `specs/`."""
    packaged = Path(__file__).resolve().parent / "specs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "specs"


def stock_names() -> list[str]:
    """Names of the stock specs, sorted."""
    return sorted(p.stem for p in stock_dir().glob("*.yaml"))


def _display(path: Path) -> str:
    """A path as a user would like to read it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def locate(ref: str, base: Path | None = None) -> Path | None:
    """A file for `ref`: a path (relative to `base`'s folder when given), else a stock name; None if neither."""
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref or os.sep in ref
    candidate = (base.parent / ref) if base is not None else Path(ref)
    if candidate.is_file():
        return candidate
    if not looks_like_path:
        stock = stock_dir() / f"{ref}.yaml"
        if stock.is_file():
            return stock
    return None


def read_file(path: Path, shown: str | None = None) -> Document:
    """Parse one spec file; I/O problems become SpecErrors."""
    shown = shown or _display(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise SpecError(Problem(Mark(shown), "", "is a folder, not a spec file")) from None
    except OSError as exc:
        raise SpecError(Problem(Mark(shown), "", f"cannot read the file: {exc.strerror or exc}")) from None
    return yamldoc.parse(data, shown)


def _not_found(ref: str) -> str:
    names = stock_names()
    return f"no spec file or stock spec named {ref!r} (stock specs: {', '.join(names)})"


def load_document(source, overrides: tuple[str, ...] | list[str] = ()) -> Document:
    """Resolve a path, stock name or mapping into one document: `extends` merged, overrides applied."""
    if isinstance(source, Document):
        doc = source
    elif isinstance(source, (str, os.PathLike)):
        ref = os.fspath(source)
        path = locate(ref)
        if path is None:
            raise SpecError(Problem(Mark(ref), "", _not_found(ref)))
        doc = _resolve_file(path, ref if Path(ref).is_file() else _display(path), ())
    elif isinstance(source, dict):
        doc = _resolve_extends(yamldoc.from_mapping(source), None, ())
    else:
        raise SpecError(Problem(Mark("<spec>"), "", f"a spec is a path, a stock name or a mapping, not {type(source).__name__}"))
    for item in overrides:
        doc = apply_override(doc, item)
    return doc


def _resolve_file(path: Path, shown: str, chain: tuple[Path, ...]) -> Document:
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join(_display(p) for p in chain + (resolved,))
        raise SpecError(Problem(Mark(shown, 1, 1), "extends", f"`extends` makes a cycle: {names}"))
    doc = _resolve_extends(read_file(path, shown), path, chain + (resolved,))
    doc.data.setdefault("name", path.stem)
    return doc


def _resolve_extends(doc: Document, path: Path | None, chain: tuple[Path, ...]) -> Document:
    parent_ref = doc.data.get("extends", _MISSING)
    if parent_ref is _MISSING or parent_ref is None:
        doc.data.pop("extends", None)
        return doc
    mark = doc.marks.get(("extends",), Mark(doc.source, 1, 1))
    if not isinstance(parent_ref, str) or not parent_ref:
        raise SpecError(Problem(mark, "extends", "expected the name of a stock spec or a path to a spec file"))
    parent_path = locate(parent_ref, path)
    if parent_path is None:
        raise SpecError(Problem(mark, "extends", _not_found(parent_ref)))
    try:
        parent = _resolve_file(parent_path, _display(parent_path), chain)
    except SpecError as exc:
        raise exc.via(mark) from None
    child = dict(doc.data)
    child.pop("extends")
    for key in _NOT_INHERITED:
        if key not in child:
            parent.data.pop(key, None)
    merged = Document(data={}, source=doc.source)
    merged.data = _merge(parent, doc, parent.data, child, (), merged)
    return merged


def _copy_marks(src: Document, dst: Document, path: tuple) -> None:
    n = len(path)
    for table_name in ("marks", "key_marks", "raw"):
        src_table, dst_table = getattr(src, table_name), getattr(dst, table_name)
        for key, value in src_table.items():
            if key[:n] == path:
                dst_table[key] = value


def _merge(parent: Document, child: Document, p, c, path: tuple, out: Document):
    """Child values over parent values: mappings merge key by key, anything else is replaced whole."""
    if isinstance(p, dict) and isinstance(c, dict):
        for table_name in ("marks", "key_marks"):
            table = getattr(child, table_name) if path in getattr(child, table_name) else getattr(parent, table_name)
            if path in table:
                getattr(out, table_name)[path] = table[path]
        result = {}
        for key, value in p.items():
            if key not in c:
                result[key] = value
                _copy_marks(parent, out, path + (key,))
        for key, value in c.items():
            if key in p:
                result[key] = _merge(parent, child, p[key], value, path + (key,), out)
            else:
                result[key] = value
                _copy_marks(child, out, path + (key,))
        return result
    _copy_marks(child, out, path)
    return c


def _parse_override(item: str) -> tuple[list, object, Mark]:
    mark = Mark(f"--set {item}")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(Problem(mark, "", "expected KEY=VALUE, for example --set stages.2.depth=36"))
    parts: list = []
    for part in key.split("."):
        if not part:
            raise SpecError(Problem(mark, key, "empty part in the key; use dots between names, like head.num_classes"))
        parts.append(int(part) if part.isdigit() else part)
    try:
        value = yamldoc.parse("value: " + text, mark.source).data.get("value") if text.strip() else None
    except SpecError as exc:
        raise SpecError(Problem(mark, key, exc.problems[0].message)) from None
    if not text.strip():
        raise SpecError(Problem(mark, key, "no value after `=`"))
    return parts, value, mark


def apply_override(doc: Document, item: str) -> Document:
    """Apply one `KEY=VALUE` (dotted key, YAML value); mappings merge, anything else replaces."""
    parts, value, mark = _parse_override(item)
    node = doc.data
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
            node = node[part]
        else:
            raise SpecError(Problem(mark, here, f"is a single value ({node!r}), it has no fields to set"))
        if not isinstance(node, (dict, list)):
            raise SpecError(Problem(mark, here, f"is a single value ({node!r}), it has no fields to set"))
    last = parts[-1]
    path = tuple(parts)
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise SpecError(Problem(mark, ".".join(map(str, parts)), _index_message(last, node)))
        node[last] = value
    else:
        last = str(last)
        old = node.get(last)
        node[last] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        path = tuple(parts[:-1]) + (last,)
    for table in (doc.marks, doc.key_marks):
        for key in [k for k in table if k[: len(path)] == path]:
            del table[key]
        table[path] = mark
    return doc


def _deep_merge(old: dict, new: dict) -> dict:
    result = dict(old)
    for key, value in new.items():
        result[key] = _deep_merge(result[key], value) if isinstance(result.get(key), dict) and isinstance(value, dict) else value
    return result


def _index_message(part, node: list) -> str:
    if not isinstance(part, int):
        return f"is a list; use a number from 0 to {len(node) - 1}, not {part!r}"
    return f"index {part} is out of range: the list has {len(node)} entries (0 to {len(node) - 1})"
