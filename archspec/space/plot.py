"""`archspec plot-samples`: sample files drawn as the design-space papers draw them.

- Parameters against FLOPs: one point per sample, one colour per samples file, stock specs as
  labelled references.
- With `--edf QUANTITY`: the empirical distribution function F(x) = fraction of samples with a
  value at most x, one curve per samples file: how the papers compare design spaces.

matplotlib is imported when a chart is drawn (the optional `plot` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import Mark, Problem, SpecError, printable, shorten
from archspec.space.constraints import QUANTITIES
from archspec.space.results import SampleRun
from archspec.tools.plot import LOG_SPREAD, image_format, place_labels, plain_text, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# How each quantity is shown on an axis: (divisor, label).
_AXES = {
    "params": (1e6, "parameters (millions)"),
    "flops": (1e9, "GFLOPs per image (fvcore convention: 1 multiply-add = 1 flop)"),
    "macs": (1e9, "GMACs per image (conv and fully connected multiply-adds)"),
    "activations": (1e6, "activations (millions of conv and fc outputs)"),
    "depth": (1, "depth (weighted layers on the main path)"),
    "stages": (1, "stages"),
}
# Reference specs drawn by default: the stock specs that fall among the samples, this far around them.
_REFERENCE_MARGIN = 1.25


@dataclass(frozen=True)
class Reference:
    """A spec drawn beside the samples, with its analytic counts."""

    name: str
    counts: dict[str, int]


def edf_quantity(runs: Sequence[SampleRun], quantity: str) -> None:
    """Refuse (exit 2) a quantity that is neither counted nor drawn in every samples file."""
    fields = [set().union(*(record.fields for record in run.samples)) for run in runs]
    if quantity in QUANTITIES:
        return
    if all(quantity in names for names in fields):
        # Drawn in every file, but perhaps not a number in every sample (a drawn block name), or not drawn
        # in some (a stage that a drawn count left out): those would silently drop out of the curve.
        for run in runs:
            odd = [record for record in run.samples if _value(record, quantity) is None]
            if odd:
                first = odd[0].fields.get(quantity)
                what = "not drawn" if quantity not in odd[0].fields else f"{shorten(repr(first), 24)}, not a number"
                raise SpecError(
                    Problem(
                        Mark(f"--edf {shorten(quantity)}"),
                        "edf",
                        f"not a number in {len(odd):,} of the {len(run.samples):,} samples of {run.space_name} "
                        f"({printable(odd[0].name)}: {what}); choose a quantity that every sample has as a number",
                    ),
                    code=2,
                )
        return
    drawn = sorted(set.intersection(*fields)) if fields else []
    valid = ", ".join([*QUANTITIES, *drawn])
    raise SpecError(
        Problem(
            Mark(f"--edf {shorten(quantity)}"), "edf", f"not a quantity of every samples file; choose one of {valid}"
        ),
        code=2,
    )


def _value(record: Any, quantity: str) -> float | None:
    if quantity in QUANTITIES:
        return float(getattr(record, quantity))
    value = record.fields.get(quantity)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def reference_specs(runs: Sequence[SampleRun], names: Sequence[str] | None) -> list[Reference]:
    """The given specs, or (when none are given) the stock specs whose FLOPs and parameters lie among the samples'."""
    from archspec.api import count, list_specs

    chosen = list(names) if names is not None else list_specs()
    found = []
    for name in chosen:
        c = count(name)
        found.append(
            Reference(
                c.name,
                {"params": c.params, "flops": c.flops, "macs": c.macs, "activations": c.activations, "depth": c.layers},
            )
        )
    if names is not None:
        return found
    records = [record for run in runs for record in run.samples]
    if not records:
        return []
    m = _REFERENCE_MARGIN
    flops = (min(r.flops for r in records) / m, max(r.flops for r in records) * m)
    params = (min(r.params for r in records) / m, max(r.params for r in records) * m)
    return [
        ref
        for ref in found
        if flops[0] <= ref.counts["flops"] <= flops[1] and params[0] <= ref.counts["params"] <= params[1]
    ]


def _series_label(run: SampleRun) -> str:
    return f"{run.space_name} ({len(run.samples):,} samples)"


def draw_scatter(runs: Sequence[SampleRun], refs: Sequence[Reference], title: str | None) -> Figure:
    """Parameters against FLOPs: a point per sample, one colour per file; references as labelled squares."""
    figure, axes = _figure()
    xs: list[float] = []
    ys: list[float] = []
    for run in runs:
        x = [record.flops / 1e9 for record in run.samples]
        y = [record.params / 1e6 for record in run.samples]
        axes.scatter(x, y, s=8, alpha=0.5, linewidths=0, label=plain_text(_series_label(run)), zorder=2)
        xs += x
        ys += y
    if refs:
        rx = [ref.counts["flops"] / 1e9 for ref in refs]
        ry = [ref.counts["params"] / 1e6 for ref in refs]
        axes.scatter(rx, ry, s=40, marker="s", color="tab:red", label="stock specs", zorder=3)
        xs += rx
        ys += ry
    _log_if_wide(axes, xs, "x")
    _log_if_wide(axes, ys, "y")
    axes.margins(0.08)
    axes.set_xlabel(_AXES["flops"][1])
    axes.set_ylabel(_AXES["params"][1])
    names = ", ".join(run.space_name for run in runs)
    axes.set_title(plain_text(title or f"Parameters against FLOPs: {names}"))
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    place_labels(figure, axes, [(ref.name, ref.counts["flops"] / 1e9, ref.counts["params"] / 1e6) for ref in refs])
    return figure


def draw_edf(runs: Sequence[SampleRun], quantity: str, refs: Sequence[Reference], title: str | None) -> Figure:
    """The empirical distribution function of `quantity`: a step curve per samples file."""
    figure, axes = _figure()
    scale, label = _AXES.get(quantity, (1, quantity))
    shown: list[float] = []
    for run in runs:
        values = sorted(v / scale for record in run.samples if (v := _value(record, quantity)) is not None)
        if not values:
            continue
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        axes.step([values[0], *values], [0.0, *fractions], where="post", label=plain_text(_series_label(run)), zorder=2)
        shown += values
    marks = [(ref.name, ref.counts[quantity] / scale) for ref in refs if quantity in ref.counts]
    for i, (name, x) in enumerate(marks):
        axes.axvline(x, color="tab:red", linestyle="--", linewidth=0.8, zorder=1)
        axes.annotate(
            plain_text(name),
            (x, 0.98 - 0.05 * (i % 3)),
            xytext=(3, 0),
            textcoords="offset points",
            va="top",
            fontsize=7,
            color="tab:red",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
        shown.append(x)
    _log_if_wide(axes, shown, "x")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(plain_text(label))
    axes.set_ylabel("cumulative fraction of samples")
    axes.set_title(plain_text(title or f"Empirical distribution of {quantity}"))
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _log_if_wide(axes: Axes, values: list[float], axis: str) -> None:
    from matplotlib.ticker import FuncFormatter

    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > LOG_SPREAD:
        (axes.set_xscale if axis == "x" else axes.set_yscale)("log")
        # 0.1, 1, 10 rather than 10^-1, 10^0, 10^1: the axes are counted in millions or billions already.
        (axes.xaxis if axis == "x" else axes.yaxis).set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def draw_samples(
    runs: Sequence[SampleRun],
    *,
    out: Path,
    edf: str | None = None,
    references: Sequence[str] | None = None,
    title: str | None = None,
    force: bool = False,
) -> str:
    """Draw the chart and write it to `out` (.png or .svg, atomically); return what was drawn, in words."""

    from archspec.files import check_output

    fmt = image_format(out)
    check_output(out, force=force)
    refs = reference_specs(runs, references)
    figure = draw_edf(runs, edf, refs, title) if edf is not None else draw_scatter(runs, refs, title)
    series = ", ".join(printable(_series_label(run)) for run in runs)
    drawn = f"{len(runs)} series ({series}); references: {', '.join(ref.name for ref in refs) or 'none'}"
    # What was drawn goes into the file's metadata too, so a reader (or a test) can list it without OCR.
    metadata = {"Title": printable(figure.axes[0].get_title()), "Description": drawn}
    save_figure(figure, out, fmt, metadata, force=force)
    return drawn
