"""Commands that build a model: build, export, bench. Each imports torch only once it runs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import (
    Amp,
    Device,
    DeviceOpt,
    ForceOpt,
    GuardForceOpt,
    SetOpt,
    SizeOpt,
    SpecArg,
    TableFormat,
    WeightsOpt,
    echo_err,
    guarded,
    parse_size,
    require,
    spec_source,
    usage_error,
    weights_file,
)
from archspec.report.render import to_json

# Bounds that keep a typo from asking torch for an absurd allocation before the memory guard can speak.
MAX_BATCH = 2**31 - 1


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    exported_program = "exported-program"


@guarded
def build(
    spec: SpecArg,
    device: DeviceOpt = Device.auto,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=MAX_BATCH, help="Batch size of the dummy forward pass.", metavar="N")
    ] = 1,
    overrides: SetOpt = None,
    weights: WeightsOpt = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.table,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Save a checkpoint (resolved spec + state_dict) here.", metavar="FILE", show_default=False
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Build the model on the device (with --weights, from a weights file), run a dummy forward pass and print a
    per-stage report."""
    from archspec.report.tables import build_text
    from archspec.tools.build import run_build

    source, weights = spec_source(spec, weights_file(weights))
    result = run_build(
        source,
        overrides=overrides or (),
        device=device.value,
        batch=batch,
        out=out,
        force=force,
        weights=weights,
        progress=echo_err,
    )
    typer.echo(to_json(result) if fmt == TableFormat.json else build_text(result))


def _export_batch(text: str) -> int | None:
    """`dynamic` -> None; a positive batch size N -> N; anything else is a usage error."""
    if text.strip().lower() == "dynamic":
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_BATCH:
        raise usage_error("--batch", text, f"expected 'dynamic' or a batch size from 1 to {MAX_BATCH}")
    return int(text)


@guarded
def export(
    spec: SpecArg,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="onnx (opened by onnxruntime), torchscript (torch.jit.load) or exported-program (torch.export.load).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The file to write.", metavar="FILE", show_default=False)],
    weights: WeightsOpt = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="The same as --weights (kept for older scripts).",
            metavar="FILE",
            hidden=True,
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        str, typer.Option("--batch", help="'dynamic' (any batch size) or a fixed batch size N.", metavar="dynamic|N")
    ] = "dynamic",
    size: SizeOpt = None,
    overrides: SetOpt = None,
    force: ForceOpt = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check", help="Load the export back and compare its outputs with PyTorch's before writing it."
        ),
    ] = True,
    report: Annotated[
        TableFormat, typer.Option("--report", help="How to print what was written: table (text) or json.")
    ] = TableFormat.table,
) -> None:
    """Export the model for use outside archspec; the file is loaded back and checked against PyTorch before it is
    written."""
    from archspec.plan import load_plan
    from archspec.report.tables import export_text
    from archspec.tools.build import check_model_output
    from archspec.tools.export import export_model

    fixed = _export_batch(batch)
    weights = weights_file(weights or checkpoint)
    if fmt == ExportFormat.onnx:
        modules = ["onnx", "onnxruntime", "onnxscript"] if check else ["onnx", "onnxscript"]
        require(modules, "pip install 'archspec[export]'", "archspec export --format onnx")
    source, weights = spec_source(spec, weights)
    plan = load_plan(source, overrides=overrides or (), input_size=parse_size(size))
    check_model_output(out, force=force, source=source, weights=weights)
    if fmt == ExportFormat.onnx:
        from archspec.counting.analytic import complexity
        from archspec.tools.export import check_onnx_size

        check_onnx_size(complexity(plan).params * 4)
    echo_err("archspec: loading torch ...")
    from archspec.nn.builder import build_from_plan
    from archspec.nn.guard import check_fits

    check_fits(plan, "cpu", fixed or 3, force=force, source=spec)
    if weights is not None:
        from archspec.nn.weights import load_weights

        model, loaded = load_weights(plan, weights, device="cpu", force=force)
        echo_err(f"archspec: {loaded}")
    else:
        model = build_from_plan(plan, "cpu")
    result = export_model(model, plan, fmt.value, out, batch=fixed, force=force, check=check, progress=echo_err)
    if report == TableFormat.json:
        typer.echo(to_json(result))
        return
    source = (
        f"weights from {weights}"
        if weights is not None
        else "freshly initialised weights (pass --weights for trained ones)"
    )
    typer.echo(export_text(result, plan.spec.name, source))


@guarded
def bench(
    spec: SpecArg,
    device: DeviceOpt = Device.auto,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=MAX_BATCH,
            help="Images per step (default: 128 on CUDA, 16 on the CPU).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Also time a full training step: forward, backward, SGD step.")
    ] = False,
    amp: Annotated[
        Amp | None,
        typer.Option(
            "--amp",
            help="Mixed precision with torch.autocast: bf16, or fp16 (CUDA only, with a gradient scaler).",
            show_default=False,
        ),
    ] = None,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Model and input in the channels-last memory format.")
    ] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile every model first (compilation happens during warm-up).")
    ] = False,
    vs: Annotated[
        list[str] | None,
        typer.Option(
            "--vs",
            help=(
                "Time another model in the same run: torchvision or timm (the same network), or torchvision:NAME "
                "/ timm:NAME (repeatable)."
            ),
            metavar="PEER",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            "--warmup",
            min=0,
            max=100_000,
            help="Untimed steps per model (default: 10 on CUDA, 3 on the CPU).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    iters: Annotated[
        int | None,
        typer.Option(
            "--iters",
            min=1,
            max=1_000_000,
            help="Timed steps per model (default: 50 on CUDA, 10 on the CPU).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=4096,
            help="CPU threads for torch (default: torch's, one per core).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    size: SizeOpt = None,
    overrides: SetOpt = None,
    weights: WeightsOpt = None,
    force: GuardForceOpt = False,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.table,
) -> None:
    """Throughput (images/s, median step) and peak memory for inference and, with --train, training; --vs times
    another library's model alongside."""
    from archspec.report.tables import bench_text
    from archspec.tools.bench import run_bench

    source, weights = spec_source(spec, weights_file(weights))
    result = run_bench(
        source,
        overrides=overrides or (),
        input_size=parse_size(size),
        device=device.value,
        batch=batch,
        train=train,
        amp=amp.value if amp else None,
        channels_last=channels_last,
        compile_model=compile_model,
        vs=vs or (),
        warmup=warmup,
        iters=iters,
        threads=threads,
        weights=weights,
        force=force,
    )
    typer.echo(to_json(result) if fmt == TableFormat.json else bench_text(result))


def register(app: typer.Typer) -> None:
    app.command()(build)
    app.command()(export)
    app.command()(bench)
