"""One renderer per result and format: aligned tables, Markdown and CSV for people and spreadsheets,
JSON (`render.to_json`) for machines. Every command prints through these."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from archspec.report.render import human, ratio, render
from archspec.report.results import (
    BenchResult,
    BuildResult,
    ExportResult,
    FlopsRow,
    ModuleRow,
    SpecDiff,
    SpecSummary,
    TrainResult,
)

FLOPS_NOTE = (
    "FLOPs: fvcore's convention (1 fused multiply-add = 1 flop; conv, fc, norm, adaptive pool). "
    "MACs: conv + fc multiply-adds (the paper's and torchvision's 'FLOPs'). Ratios compare with each baseline at "
    "the row's input size."
)


def flops_table(rows: Sequence[FlopsRow], fmt: str, *, by_op: bool = False) -> str:
    """`archspec flops`: human units in tables and Markdown, exact integers and ratios in CSV."""
    exact = fmt == "csv"
    baselines = list(rows[0].vs) if rows else []
    ops = sorted({op for row in rows for op in row.flops_by_op}) if by_op else []
    library = [row.name for row in rows if row.layers is None]  # torchvision:NAME and timm:NAME rows
    columns = [
        ("name", "name"),
        ("layers", "layers"),
        ("params", "params"),
        ("flops", "FLOPs"),
        ("macs", "MACs"),
        ("paper", "paper"),
    ]
    if exact:
        columns += [("baseline", "baseline"), ("input", "input"), ("counter", "counter")]
    else:
        if len({tuple(row.input_size) for row in rows}) > 1:
            columns.append(("input", "input"))
        if library or len({row.counter for row in rows}) > 1:
            columns.append(("counter", "counter"))
    for b in baselines:
        columns += [(f"params_vs_{b}", f"params/{b}"), (f"flops_vs_{b}", f"FLOPs/{b}")]
    columns += [(f"op_{op}", op) for op in ops]
    cells = []
    for row in rows:
        cell: dict[str, object] = {
            "name": row.name + (" (baseline)" if row.baseline and not exact else ""),
            "layers": "-" if row.layers is None else row.layers,
            "params": row.params if exact else human(row.params),
            "flops": row.flops if exact else human(row.flops),
            "macs": row.macs if exact else human(row.macs),
            "paper": row.paper,
            "baseline": "true" if row.baseline else "false",
            "input": "x".join(map(str, row.input_size)),
            "counter": row.counter,
        }
        for b, r in row.vs.items():
            cell[f"params_vs_{b}"] = (
                ("" if r.params_ratio is None else repr(r.params_ratio)) if exact else ratio(r.params_ratio)
            )
            cell[f"flops_vs_{b}"] = (
                ("" if r.flops_ratio is None else repr(r.flops_ratio)) if exact else ratio(r.flops_ratio)
            )
        for op, value in row.flops_by_op.items():
            cell[f"op_{op}"] = value if exact else human(value)
        cells.append(cell)
    text = render(cells, columns, fmt)
    if fmt == "table":
        counters = ", ".join(sorted({row.counter for row in rows})) or "analytic"
        text += f"\n\n{FLOPS_NOTE} Counter: {counters}."
        if library:
            text += " torchvision and timm models are counted with fvcore on the model the library builds."
    return text


def modules_table(rows: Sequence[ModuleRow], fmt: str) -> str:
    """`archspec flops --by-module`: one row per module, named as in `model.named_modules()` and indented by depth
    in tables; each row counts the module with everything inside it."""
    exact = fmt == "csv"
    columns = [
        ("module", "module"),
        ("params", "params"),
        ("flops", "FLOPs"),
        ("macs", "MACs"),
        ("activations", "activations"),
    ]
    if exact:
        columns.insert(1, ("depth", "depth"))
    cells = []
    for row in rows:
        name = row.module or "model"
        if fmt == "table":
            name = "  " * row.depth + name
        cells.append(
            {
                "module": name,
                "depth": row.depth,
                "params": row.params if exact else human(row.params),
                "flops": row.flops if exact else human(row.flops),
                "macs": row.macs if exact else human(row.macs),
                "activations": row.activations if exact else human(row.activations),
            }
        )
    text = render(cells, columns, fmt)
    if fmt == "table":
        text += (
            "\n\nEach module counts itself and everything inside it, named as in model.named_modules(). "
            "FLOPs and MACs as in `archspec flops`; activations: output elements of conv and fc layers (fvcore's)."
        )
    return text


def list_table(rows: Sequence[SpecSummary], fmt: str) -> str:
    exact = fmt == "csv"
    cells = [
        {
            "name": row.name,
            "layers": row.layers,
            "params": row.params if exact else human(row.params),
            "flops": row.flops if exact else human(row.flops),
            "input": row.input,
        }
        for row in rows
    ]
    return render(
        cells,
        [("name", "name"), ("layers", "layers"), ("params", "params"), ("flops", "FLOPs (fvcore)"), ("input", "input")],
        fmt,
    )


def _as_shown(value: object) -> str:
    """A value as `archspec show` writes it in YAML: null, true and false, not Python's None, True and False."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def diff_text(diff: SpecDiff) -> str:
    lines = [f"--- {diff.a_name} ({diff.a_source})", f"+++ {diff.b_name} ({diff.b_source})"]
    lines += [f"  {change.field}: {_as_shown(change.before)} -> {_as_shown(change.after)}" for change in diff.changes]
    if not diff.changes:
        lines.append("  (the resolved specs are the same)")
    rows = []
    labels = {"layers": "layers", "params": "params", "flops": "FLOPs", "macs": "MACs"}
    for pair in diff.counts:
        change = f"{(pair.after - pair.before) / pair.before * 100:+.1f}%" if pair.before else "-"
        shown = (pair.before, pair.after) if pair.what == "layers" else (human(pair.before), human(pair.after))
        rows.append({"what": labels[pair.what], "a": shown[0], "b": shown[1], "change": change})
    lines += ["", render(rows, [("what", ""), ("a", diff.a_name), ("b", diff.b_name), ("change", "change")], "table")]
    return "\n".join(lines)


def build_text(result: BuildResult) -> str:
    """`archspec build`: the headline, the device, the timings and the per-stage table."""
    shown: list[dict[str, object]] = [
        {**row.__dict__, "params": human(row.params), "flops": human(row.flops)} for row in result.stages
    ]
    shown.append(
        {
            "stage": "total",
            "blocks": sum(r.blocks for r in result.stages if isinstance(r.blocks, int)),
            "params": human(result.params),
            "flops": human(result.flops),
        }
    )
    columns = [
        ("stage", "stage"),
        ("blocks", "blocks"),
        ("block", "block"),
        ("shortcut", "shortcut"),
        ("channels", "in -> out"),
        ("stride", "stride"),
        ("output", "output"),
        ("params", "params"),
        ("flops", "FLOPs"),
    ]
    shapes = (
        result.output_shape
        if result.output_shape and isinstance(result.output_shape[0], list)
        else [result.output_shape]
    )
    shape = ", ".join("x".join(map(str, s)) for s in shapes)
    c, h, w = result.input
    lines = [
        f"{result.name}: {result.layers} layers, {result.params:,} parameters, {human(result.flops)} FLOPs (fvcore "
        f"convention), {human(result.macs)} MACs",
        f"device: {result.device} ({result.device_name}); input {result.batch}x{c}x{h}x{w} -> output {shape}",
        f"built in {result.build_seconds:.2f} s, forward pass {result.forward_seconds:.3f} s",
    ]
    if result.weights is not None:
        lines.append(f"weights: {result.weights}")
    lines += ["", render(shown, columns, "table")]
    if result.checkpoint is not None:
        lines += ["", f"checkpoint: {result.checkpoint}"]
    return "\n".join(lines)


def bench_settings(result: BenchResult) -> str:
    """`bf16, channels-last, compiled` in words."""
    return ", ".join(
        [
            result.amp or "float32",
            "channels-last" if result.channels_last else "channels-first",
            "compiled" if result.compile else "eager",
        ]
    )


def bench_text(result: BenchResult) -> str:
    """The measurements as an aligned table, with the settings above and the ratios below."""
    rows = []
    for label, modes in result.results.items():
        name = result.spec if label == "archspec" else result.peers[label]
        # A peer named as LIBRARY:NAME is labelled by that already.
        model = label if ":" in label else f"{label} {name}"
        for mode, m in modes.items():
            rows.append(
                {
                    "model": model,
                    "mode": mode,
                    "images_per_s": f"{m.images_per_s:.1f}",
                    "median_ms": f"{m.median_ms:.1f}",
                    "range": f"{m.min_ms:.1f}-{m.max_ms:.1f}",
                    "memory": "-" if m.peak_memory_bytes is None else f"{m.peak_memory_bytes / 2**20:,.0f} MiB",
                }
            )
    columns = [
        ("model", "model"),
        ("mode", "mode"),
        ("images_per_s", "images/s"),
        ("median_ms", "median ms"),
        ("range", "min-max ms"),
        ("memory", "peak memory"),
    ]
    c, h, w = result.input
    method = f"median of {result.iters} timed steps after {result.warmup} warm-up"
    if result.peers:
        method += ", " + " and ".join(["archspec", *result.peers]) + " taking turns"
    threads = f"{result.threads} thread{'s' if result.threads != 1 else ''}"
    lines = [
        f"{result.spec} on {result.device} ({result.device_name}, torch {result.torch}, {threads})",
        f"batch {result.batch} x {c}x{h}x{w}, {bench_settings(result)}; {method}",
        "",
        render(rows, columns, "table"),
    ]
    ratios_text = []
    for library, ratios in result.vs.items():
        text = f"archspec / {library}: inference {ratios['throughput_ratio']:.3f}x"
        if "train_throughput_ratio" in ratios:
            text += f", training {ratios['train_throughput_ratio']:.3f}x"
        ratios_text.append(text + " (throughput ratio; above 1 means archspec is faster)")
    if ratios_text:
        lines += ["", *ratios_text]
    if result.device == "cpu":
        lines += ["", "peak memory is measured on CUDA only (torch.cuda.max_memory_allocated)"]
    return "\n".join(lines)


def bench_markdown(results: Sequence[BenchResult]) -> str:
    """Several bench results as one Markdown table (what benchmarks/gpu.sh prints)."""
    libraries = list(dict.fromkeys(library for result in results for library in result.vs))
    rows = []
    for result in results:
        for mode, m in result.results["archspec"].items():
            row: dict[str, object] = {
                "spec": result.spec,
                "mode": mode,
                "settings": bench_settings(result),
                "batch": result.batch,
                "archspec": f"{m.images_per_s:,.1f}",
                "memory": "-" if m.peak_memory_bytes is None else f"{m.peak_memory_bytes / 2**30:.2f} GiB",
            }
            for library, ratios in result.vs.items():
                row[library] = f"{result.results[library][mode].images_per_s:,.1f}"
                row[f"ratio_{library}"] = (
                    f"{ratios['throughput_ratio' if mode == 'inference' else 'train_throughput_ratio']:.3f}"
                )
            rows.append(row)
    columns = [
        ("spec", "spec"),
        ("mode", "mode"),
        ("settings", "settings"),
        ("batch", "batch"),
        ("archspec", "archspec images/s"),
    ]
    for library in libraries:
        columns += [(library, f"{library} images/s"), (f"ratio_{library}", f"archspec / {library}")]
    columns.append(("memory", "archspec peak memory"))
    devices = sorted({f"{r.device_name} ({r.device}, torch {r.torch})" for r in results})
    steps = sorted({f"median of {r.iters} timed steps after {r.warmup} warm-up" for r in results})
    header = f"Device: {'; '.join(devices)}. {'; '.join(steps).capitalize()}; the models take turns step by step."
    return header + "\n\n" + render(rows, columns, "markdown")


def export_text(result: ExportResult, name: str, weights: str) -> str:
    lines = [
        f"wrote {result.path}: {name} as {result.format}, {result.bytes / 2**20:.1f} MiB, {weights}",
        f"input: {', '.join(map(str, result.input_shape))} (float32, NCHW); outputs: {', '.join(result.output_names)}",
    ]
    if result.checked_batch:
        lines.append(
            f"checked at batch {result.checked_batch}: max |exported - PyTorch| = {result.max_abs_difference:.3g} "
            f"(outputs up to {result.max_abs_output:.3g})"
        )
    else:
        lines.append("not checked (--no-check)")
    return "\n".join(lines)


_TRAIN_COLUMNS = [
    ("name", "spec"),
    ("layers", "layers"),
    ("params", "params"),
    ("epoch", "epochs"),
    ("train_loss", "train loss"),
    ("train_error", "train err %"),
    ("heldout_error", "held-out err %"),
    ("images_per_second", "img/s"),
    ("seconds", "time (s)"),
]


def train_table(results: Sequence[TrainResult], fmt: str = "table") -> str:
    """The final row of each trained spec (a table, or Markdown for docs)."""
    rows = []
    for result in results:
        final = result.final
        rows.append(
            {
                "name": result.name,
                "layers": result.layers,
                "params": human(result.params),
                "epoch": int(final["epoch"]),
                "train_loss": f"{final['train_loss']:.4f}",
                "train_error": f"{final['train_error']:.2f}",
                "heldout_error": f"{final['heldout_error']:.2f}",
                # The median epoch: the first one pays for warm-up (and compilation).
                "images_per_second": f"{statistics.median(r['images_per_second'] for r in result.history):.0f}",
                "seconds": f"{sum(r['seconds'] for r in result.history):.1f}",
            }
        )
    return render(rows, _TRAIN_COLUMNS, fmt)
