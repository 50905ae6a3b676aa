"""`archspec plot`: parameters against FLOPs, one labelled point per spec and per baseline (the "cost versus VGG"
chart).

The counts are the analytic ones of `archspec flops` (no torch); drawing needs
matplotlib, the optional `plot` extra.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.errors import Mark, Problem, SpecError, printable
from archspec.plan import InputSize
from archspec.report.results import FlopsRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")
# Spread wider than this on an axis and the axis is drawn on a log scale.
LOG_SPREAD = 20


def image_format(out: str | os.PathLike[str]) -> str:
    """`png` or `svg`, from the file name; anything else is a SpecError."""
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise SpecError(Problem(Mark(str(out)), "--out", "give a file name ending in .png or .svg"))
    return suffix


def cost_points(
    specs: Sequence[str], baselines: Sequence[str], input_size: InputSize | None = None, overrides: Sequence[str] = ()
) -> list[FlopsRow]:
    """One point per spec, then per baseline not already among the specs (the rows of `archspec flops`)."""
    from archspec.tools.flops import compare

    return compare(specs, baselines=baselines, overrides=overrides, input_size=input_size, at_row_sizes=False)


def plain_text(text: str) -> str:
    """`text` as matplotlib draws it literally: a `$` would otherwise start mathtext (and a stray one fail to draw),
    and a leading `_` would hide the label from the legend (matplotlib's mark of a private artist)."""
    text = printable(text).replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


# Where a label may go, relative to its point (points, horizontal alignment): tried in order.
_LABEL_PLACES = [
    ((6, 4), "left"),
    ((6, -12), "left"),
    ((-6, 4), "right"),
    ((-6, -12), "right"),
    ((6, 16), "left"),
    ((6, -24), "left"),
]


def draw(points: list[FlopsRow], title: str | None = None) -> Figure:
    """A matplotlib Figure of the points (not shown, not saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself to the figure
    axes = figure.add_subplot()
    for baseline, marker, color, name in ((False, "o", "tab:blue", "spec"), (True, "s", "tab:red", "baseline")):
        chosen = [p for p in points if p.baseline == baseline]
        if chosen:
            xs, ys = [p.flops / 1e9 for p in chosen], [p.params / 1e6 for p in chosen]
            axes.scatter(xs, ys, s=40, zorder=3, marker=marker, color=color, label=name)
    flops = [p.flops for p in points if p.flops > 0]
    params = [p.params for p in points if p.params > 0]
    if flops and max(flops) / min(flops) > LOG_SPREAD:
        axes.set_xscale("log")
    if params and max(params) / min(params) > LOG_SPREAD:
        axes.set_yscale("log")
    axes.margins(0.1)
    sizes = {tuple(p.input_size) for p in points}
    at = f"at {'x'.join(map(str, next(iter(sizes))))}" if len(sizes) == 1 else "at each spec's input size"
    axes.set_xlabel(f"GFLOPs per image {at} (fvcore convention: 1 multiply-add = 1 flop)")
    axes.set_ylabel("parameters (millions)")
    baselines = [p.name for p in points if p.baseline]
    heading = title or "Parameters against FLOPs" + (
        f" (baseline{'s' if len(baselines) > 1 else ''}: {', '.join(baselines)})" if baselines else ""
    )
    axes.set_title(plain_text(heading))
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper left")
    place_labels(figure, axes, [(p.name, p.flops / 1e9, p.params / 1e6) for p in points])
    return figure


def place_labels(figure: Figure, axes: Axes, points: Sequence[tuple[str, float, float]]) -> None:
    """Label each (name, x, y) point in data coordinates where its label overlaps no earlier label,
    no labelled point's marker and no legend, and stays inside the axes (else at its last place)."""
    from matplotlib.transforms import Bbox

    if not points:
        return
    figure.canvas.draw()  # runs the layout, so display coordinates are final
    figure.set_layout_engine("none")
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's canvas has it; the base class does not
    inside = axes.get_window_extent(renderer)
    legend = axes.get_legend()
    placed = [legend.get_window_extent(renderer)] if legend is not None else []
    radius = 5 * figure.dpi / 72  # the markers too, so that no label covers another point
    for _, x, y in points:
        px, py = axes.transData.transform((x, y))
        placed.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
    for name, x, y in sorted(points, key=lambda p: (p[1], p[2])):
        label = None
        for offset, align in _LABEL_PLACES:
            if label is not None:
                label.remove()
            label = axes.annotate(
                plain_text(name), (x, y), xytext=offset, textcoords="offset points", ha=align, fontsize=8
            )
            box = label.get_window_extent(renderer)
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if fits and not any(box.overlaps(other) for other in placed):
                break
        assert label is not None  # _LABEL_PLACES is not empty
        placed.append(label.get_window_extent(renderer))


def plot_cost(
    specs: Sequence[str],
    *,
    baselines: Sequence[str],
    out: Path,
    input_size: InputSize | None = None,
    overrides: Sequence[str] = (),
    force: bool = False,
    title: str | None = None,
) -> list[FlopsRow]:
    """Draw the chart and write it to `out` (.png or .svg, atomically); return the points drawn."""

    from archspec.files import check_output

    fmt = image_format(out)
    check_output(out, force=force)
    points = cost_points(specs, baselines, input_size, overrides)
    figure = draw(points, title)
    # The labels go into the file's metadata too, so a reader (or a test) can list them without OCR.
    metadata = {
        "Title": printable(title) if title else figure.axes[0].get_title(),
        "Description": "points: " + ", ".join(printable(p.name) for p in points),
    }
    save_figure(figure, out, fmt, metadata, force=force)
    return points


def save_figure(
    figure: Figure, out: str | os.PathLike[str], fmt: str, metadata: dict[str, str], *, force: bool
) -> None:
    """Write `figure` to `out` atomically, with `metadata` (its title and what was drawn) in the file."""
    import matplotlib

    from archspec.files import atomic_write

    # svg.fonttype "none" keeps labels as <text>, searchable and selectable, instead of outlines.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "archspec"}):
        atomic_write(out, lambda handle: figure.savefig(handle, format=fmt, metadata=metadata), force=force)
