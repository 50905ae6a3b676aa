"""Numbers to text: human units and the table, Markdown, CSV and JSON renderings."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from archspec.errors import printable

_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def human(value: float | int | None, digits: int = 2) -> str:
    """25557032 -> 25.56M; 4111512576 -> 4.11G."""
    if value is None:
        return "-"
    for scale, unit in _UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}{unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def ratio(value: float | None) -> str:
    """0.4189 -> 0.42x; small ratios keep three significant digits (0.00188x, not 0.00x)."""
    if value is None:
        return "-"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3g}x"


def render(rows: Sequence[Mapping[str, object]], columns: list[tuple[str, str]], fmt: str) -> str:
    """Rows of already formatted cells as an aligned table, Markdown or CSV."""
    headers = [title for _, title in columns]
    raw = [[str(row.get(key, "")) for key, _ in columns] for row in rows]
    if fmt == "csv":
        cells = raw
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(cells)
        return out.getvalue().rstrip("\n")
    # One cell never breaks its row: control characters are escaped, and a bar in Markdown.
    cells = [[printable(cell) for cell in row] for row in raw]
    if fmt == "markdown":
        cells = [[cell.replace("|", "\\|") for cell in row] for row in cells]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        pairs = enumerate(zip(values, widths, strict=True))
        return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in pairs).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def plain(value: Any) -> Any:
    """Dataclasses (the typed results) as dicts, recursively; everything else as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Indented JSON of results (dataclasses included); non-finite floats become null, so it stays JSON."""
    pieces: list[str] = []
    try:
        _indented(value, "\n", pieces)
    except _Unusual:
        return json.dumps(finite(plain(value)), indent=2)
    return "".join(pieces)


class _Unusual(Exception):
    """A value `_indented` leaves to the json module (a subclass, a key that is not text, an unknown type)."""


_encode_text = getattr(json.encoder, "c_encode_basestring_ascii", None) or json.encoder.encode_basestring_ascii
_FIELDS: dict[type, tuple[str, ...]] = {}
# What comes before each value of a mapping with these keys at this indentation (`{` or `,`, the line break, the
# key): a results file repeats the same keys at the same depth thousands of times.
_HEADS: dict[tuple[tuple[Any, ...], str], list[str]] = {}


def _heads(keys: tuple[Any, ...], inner: str) -> list[str]:
    heads = _HEADS.get((keys, inner))
    if heads is None:
        if any(type(key) is not str for key in keys):
            raise _Unusual
        heads = [("," if i else "{") + inner + _encode_text(key) + ": " for i, key in enumerate(keys)]
        if len(_HEADS) >= 1024:
            _HEADS.clear()
        _HEADS[(keys, inner)] = heads
    return heads


def _indented(value: Any, newline: str, out: list[str]) -> None:
    """`json.dumps(finite(plain(value)), indent=2)`, piece by piece into `out`, in one pass and without the json
    module's pure-Python indenting encoder (a samples.json of 100,000 samples is tens of MB). `newline` is the
    line break and indentation of the value's own line."""
    kind = type(value)
    if kind is str:
        out.append(_encode_text(value))
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is bool:
        out.append("true" if value else "false")
    elif value is None:
        out.append("null")
    elif kind is float:
        out.append(float.__repr__(value) if math.isfinite(value) else "null")
    elif kind is dict or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        if kind is dict:
            keys = tuple(value)
            values: Any = value.values()
        else:
            keys = _FIELDS.get(kind) or _FIELDS.setdefault(kind, tuple(f.name for f in dataclasses.fields(value)))
            values = (getattr(value, name) for name in keys)
        if not keys:
            out.append("{}")
            return
        inner = newline + "  "
        heads = _heads(keys, inner)
        for head, item in zip(heads, values, strict=True):
            # Integers and text, most of a results file, without a call each.
            if type(item) is int:
                out.append(head + int.__repr__(item))
            elif type(item) is str:
                out.append(head + _encode_text(item))
            else:
                out.append(head)
                _indented(item, inner, out)
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        for index, item in enumerate(value):
            out.append(("," if index else "[") + inner)
            _indented(item, inner, out)
        out.append(newline + "]")
    else:
        raise _Unusual


def finite(value: Any) -> Any:
    """NaN and infinity (a diverged run) as None, recursively, so that JSON stays JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
