"""`archspec plot-samples DIR/results.jsonl`: a study's members drawn as the 2019 design-space paper draws them.

- `--edf error` (or loss, params, flops): the empirical distribution function of the members' errors, one
  step curve per population; with `--normalize flops` (or params) each population's members are weighted
  so that the populations' complexity distributions match (`summary.complexity_weights`).
- otherwise: error against FLOPs (or `--vs params`), one point per member, one colour per population.

Failed members have no error: they are counted in the legend and left out of the curves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from archspec.errors import Mark, Problem, SpecError, printable, shorten
from archspec.tools.plot import LOG_SPREAD, image_format, plain_text, save_figure
from archspec.tools.study.records import RESULTS_FILE, MemberRecord, read_records
from archspec.tools.study.summary import complexity_weights, normalization_problem

EDF_QUANTITIES = ("error", "loss", "params", "flops")
COMPLEXITY = ("flops", "params")
_LABELS = {
    "error": "held-out top-1 error",
    "loss": "final training loss",
    "params": "parameters",
    "flops": "FLOPs per image (fvcore convention)",
}


def is_results_file(path: str) -> bool:
    """A study's results.jsonl (any .jsonl file), or the study folder that holds one."""
    target = Path(path)
    return target.suffix.lower() == ".jsonl" or (target.is_dir() and (target / RESULTS_FILE).is_file())


def read_results(paths: Sequence[str]) -> list[MemberRecord]:
    records: list[MemberRecord] = []
    for path in paths:
        target = Path(path) / RESULTS_FILE if Path(path).is_dir() else Path(path)
        if not target.is_file():
            raise SpecError(Problem(Mark(shorten(path, 200)), "SAMPLES", "no such file; give a study's results.jsonl"))
        found = read_records(target)
        if not found:
            raise SpecError(Problem(Mark(shorten(path, 200)), "SAMPLES", "holds no records yet"))
        records += found
    return records


def check_options(edf: str | None, normalize: str | None, vs: Sequence[str] | None) -> str:
    """The options that make sense for results; returns the quantity of the scatter's x axis."""

    def refuse(option: str, value: str, message: str) -> SpecError:
        return SpecError(Problem(Mark(f"{option} {shorten(value)}"), option.lstrip("-"), message), code=2)

    if edf is not None and edf not in EDF_QUANTITIES:
        raise refuse("--edf", edf, f"a study's records have {', '.join(EDF_QUANTITIES)}; choose one")
    if normalize is not None and normalize not in COMPLEXITY:
        raise refuse("--normalize", normalize, "normalise by flops or params")
    if normalize is not None and edf is None:
        raise refuse("--normalize", normalize, "weights the EDF; give --edf error with it")
    if vs is not None and (len(vs) != 1 or vs[0] not in COMPLEXITY):
        raise refuse("--vs", " ".join(vs), "with a study's results, --vs is the x axis: flops or params (once)")
    if vs is not None and edf is not None:
        raise refuse("--vs", vs[0], "draws a scatter; leave out --edf")
    return vs[0] if vs else "flops"


def _populations(records: Sequence[MemberRecord]) -> list[str]:
    return list(dict.fromkeys(record.population for record in records))


def _label(records: Sequence[MemberRecord], population: str) -> str:
    own = [r for r in records if r.population == population]
    failed = sum(r.status != "ok" for r in own)
    return f"{population} ({len(own)} members" + (f", {failed} failed)" if failed else ")")


def _value(record: MemberRecord, quantity: str) -> float | None:
    value = getattr(record, quantity)
    return float(value) if record.status == "ok" and value is not None else None


def draw_results(
    records: Sequence[MemberRecord],
    *,
    out: str | os.PathLike[str],
    edf: str | None = None,
    normalize: str | None = None,
    vs: str = "flops",
    title: str | None = None,
    force: bool = False,
) -> str:
    """Draw the chart and write it to `out` (.png or .svg, atomically); return what was drawn, in words."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fmt = image_format(out)
    figure = Figure(figsize=(8, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    weights = complexity_weights(records, normalize) if normalize else {}
    names = _populations(records)
    problem = normalization_problem(records, normalize) if normalize else None
    if problem:
        raise SpecError(Problem(Mark(f"--normalize {normalize}"), "normalize", problem))
    shown: list[float] = []
    for population in names:
        own = [r for r in records if r.population == population]
        if edf is not None:
            points = sorted(
                (v, weights.get((r.population, r.name), 0.0) if normalize else 1.0)
                for r in own
                if (v := _value(r, edf)) is not None
            )
            total = sum(w for _, w in points)
            if not points or total <= 0:
                continue
            xs, ys, running = [points[0][0]], [0.0], 0.0
            for x, w in points:
                running += w
                xs.append(x)
                ys.append(running / total)
            axes.step(xs, ys, where="post", label=plain_text(_label(records, population)), zorder=2)
            shown += xs
        else:
            pairs = [(c, e) for r in own if (c := _value(r, vs)) is not None and (e := _value(r, "error")) is not None]
            axes.scatter(
                [x for x, _ in pairs],
                [e for _, e in pairs],
                s=14,
                alpha=0.7,
                linewidths=0,
                label=plain_text(_label(records, population)),
                zorder=2,
            )
            shown += [x for x, _ in pairs]
    positive = [v for v in shown if v > 0]
    if positive and len(positive) == len(shown) and max(positive) / min(positive) > LOG_SPREAD:
        axes.set_xscale("log")
    if edf is not None:
        axes.set_ylim(0, 1.02)
        axes.set_xlabel(_LABELS[edf])
        weighted = f", weighted to equal {normalize} distributions" if normalize else ""
        axes.set_ylabel("cumulative fraction of members" + weighted)
        default = f"Error EDF{' (normalised by ' + normalize + ')' if normalize else ''}: " + ", ".join(names)
        axes.legend(loc="lower right", fontsize=8)
    else:
        axes.set_xlabel(_LABELS[vs])
        axes.set_ylabel(_LABELS["error"])
        default = f"Error against {vs}: " + ", ".join(names)
        axes.legend(loc="upper right", fontsize=8)
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title(plain_text(title or default))
    drawn = f"{len(names)} populations ({', '.join(printable(_label(records, p)) for p in names)})"
    save_figure(figure, out, fmt, {"Title": printable(axes.get_title()), "Description": drawn}, force=force)
    return drawn
