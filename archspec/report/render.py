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
    return json.dumps(finite(plain(value)), indent=2)


def finite(value: Any) -> Any:
    """NaN and infinity (a diverged run) as None, recursively, so that JSON stays JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
