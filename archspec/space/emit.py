"""A sampled spec's YAML text written directly, for the shapes a spec has: the text PyYAML's emitter writes
for `yaml.dump(data, default_flow_style=None, width=WIDTH, allow_unicode=True)` with nothing aliased, or
None where this module is not sure of it (the caller then asks PyYAML).

What it writes: a block mapping at the top; a collection whose items are all scalars in flow style
(`{depth: 3, width: 80}`, `[1, 2]`) on its key's line when that line fits in WIDTH columns; other mappings
as nested block mappings, other lists as block sequences (`- ` at the key's indent, a mapping item's first
key on the dash's line); plain scalars: integers, booleans, null, floats as PyYAML's representer writes
them, and ASCII text that reads back as text and needs no quotes, wrapped at single spaces past WIDTH
columns as PyYAML wraps plain text. Anything else (text that needs quotes or is not ASCII, a flow line too
long, a list directly inside a list, keys that are not short words or integers) gives None.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

WIDTH = 100

_STR, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:float"
# Text that is plain in block context: words of safe characters, one space between them, not starting with
# an indicator, a dot or a dash (`---`, `- x`, `.inf`); in flow context the same without spaces or commas.
_BLOCK_TEXT = re.compile(r"[A-Za-z0-9_(/][A-Za-z0-9_.,;()/+-]*(?: [A-Za-z0-9_.,;()/+-]+)*")
_FLOW_TEXT = re.compile(r"[A-Za-z0-9_(/][A-Za-z0-9_.;()/+-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class _Unsure(Exception):
    """The data has a shape whose text this module does not write."""


_RESOLVER = yaml.resolver.Resolver()
# Whether a scalar's text reads back with the tag it was written with: asked for every scalar, and a spec's
# keys and numbers repeat from one file to the next. Long texts are not kept, and at most _KEPT answers (a
# space drawing floats from a range gives a new number every draw).
_resolves: dict[tuple[str, str], bool] = {}
_KEPT = 10_000


def _reads_back(text: str, tag: str) -> bool:
    known = _resolves.get((text, tag))
    if known is None:
        known = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == tag  # type: ignore[no-untyped-call]
        if len(text) <= 40:
            if len(_resolves) >= _KEPT:
                _resolves.clear()
            _resolves[(text, tag)] = known
    return known


def plain_yaml(data: dict[Any, Any]) -> str | None:
    """PyYAML's text of `data` (see the module doc), or None."""
    if type(data) is not dict or all(_is_scalar(value) for value in data.values()):
        return None  # an empty or all-scalar top level would be a flow mapping
    lines: list[str] = []
    try:
        _block_mapping(data, 0, lines, None)
    except _Unsure:
        return None
    return "\n".join(lines) + "\n"


def _is_scalar(value: Any) -> bool:
    return type(value) not in (dict, list)


def _is_flow(value: Any) -> bool:
    """A collection PyYAML writes in flow style: every item a scalar (so also an empty one)."""
    if type(value) is dict:
        return all(type(item) not in (dict, list) for item in value.values())
    return all(type(item) not in (dict, list) for item in value)


def _block_mapping(data: dict[Any, Any], indent: int, lines: list[str], first: str | None) -> None:
    """Append the lines of a block mapping whose keys are at column `indent`; the first key goes after `first`
    (a sequence's `- `) when given."""
    pad = " " * indent
    for position, (key, value) in enumerate(data.items()):
        head = f"{first if position == 0 and first is not None else pad}{_key(key)}:"
        kind = type(value)
        if kind is dict or kind is list:
            if _is_flow(value):
                _flow_line(f"{head} {_flow(value)}", lines)
            elif kind is dict:
                lines.append(head)
                _block_mapping(value, indent + 2, lines, None)
            else:
                lines.append(head)
                _block_sequence(value, indent, lines)
        else:
            _scalar_lines(head, value, indent + 2, lines)


def _block_sequence(items: list[Any], indent: int, lines: list[str]) -> None:
    dash = " " * indent + "-"
    for item in items:
        kind = type(item)
        if kind is dict or kind is list:
            if _is_flow(item):
                _flow_line(f"{dash} {_flow(item)}", lines)
            elif kind is dict:
                _block_mapping(item, indent + 2, lines, dash + " ")
            else:
                raise _Unsure  # a block sequence directly inside another
        else:
            _scalar_lines(dash, item, indent + 2, lines)


def _flow_line(line: str, lines: list[str]) -> None:
    # PyYAML breaks a flow collection before an item that starts past WIDTH columns: none does in a line this short.
    if len(line) > WIDTH:
        raise _Unsure
    lines.append(line)


def _flow(value: dict[Any, Any] | list[Any]) -> str:
    if type(value) is dict:
        return "{" + ", ".join(f"{_key(key)}: {_scalar(item, flow=True)}" for key, item in value.items()) + "}"
    return "[" + ", ".join(_scalar(item, flow=True) for item in value) + "]"


# Text keys already found to be plain: a spec's keys repeat from one file to the next.
_plain_keys: set[str] = set()


def _key(key: Any) -> str:
    if type(key) is str:
        if key in _plain_keys:
            return key
        if _KEY.fullmatch(key) and _reads_back(key, _STR):
            if len(_plain_keys) < _KEPT:
                _plain_keys.add(key)
            return key
        raise _Unsure
    if type(key) is int:
        return str(key)
    raise _Unsure


def _scalar(value: Any, *, flow: bool) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is str:
        text: str = value
        if (_FLOW_TEXT if flow else _BLOCK_TEXT).fullmatch(text) and _reads_back(text, _STR):
            return text
        raise _Unsure
    if kind is float and value == value and value not in (float("inf"), float("-inf")):
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)  # as PyYAML's representer writes 1e17
        if _reads_back(text, _FLOAT):
            return text
    raise _Unsure


def _scalar_lines(head: str, value: Any, indent: int, lines: list[str]) -> None:
    """`head` and a plain scalar after it; text with spaces is broken, as PyYAML does, at a single space
    reached past WIDTH columns, the rest going on at `indent`."""
    text = _scalar(value, flow=False)
    if " " not in text:
        lines.append(f"{head} {text}")
        return
    words = text.split(" ")
    line = f"{head} {words[0]}"
    for word in words[1:]:
        if len(line) > WIDTH:
            lines.append(line)
            line = " " * indent + word
        else:
            line = f"{line} {word}"
    lines.append(line)
