"""`archspec export`, `archspec bench` and `archspec plot`: commands that register on the main app.

Like the rest of the CLI, they import torch, onnx and matplotlib only inside the command.
"""

from __future__ import annotations

import importlib.util
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from archspec.cli.app import Amp, Device, DeviceOpt, SetOpt, SpecArg, SpecsArg, TableFormat, app, echo_err, guarded, parse_size
from archspec.errors import Mark, Problem, SpecError


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    exported_program = "exported-program"


class Peer(str, Enum):
    torchvision = "torchvision"
    timm = "timm"


# What each command needs beyond archspec's own dependencies, and how to install it.
_OPTIONAL = {
    "onnx": (["onnx", "onnxruntime", "onnxscript"], "pip install 'archspec[export]'"),
    "onnx-export": (["onnx", "onnxscript"], "pip install 'archspec[export]'"),
    "plot": (["matplotlib"], "pip install 'archspec[plot]'"),
    "torchvision": (["torchvision"], "pip install torchvision"),
    "timm": (["timm"], "pip install timm"),
}

SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Input size N or HxW (default: the spec's own).", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite --out.")]


def require(what: str, command: str) -> None:
    """Exit with one line saying what to install when an optional package is missing."""
    modules, install = _OPTIONAL[what]
    missing = [m for m in modules if _missing(m)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        echo_err(f"archspec: {command} needs {', '.join(missing)}, which {verb} not installed; install it with: {install}")
        raise typer.Exit(code=1)


def refuse_existing(out: Path, force: bool) -> None:
    """Refuse an existing --out before the slow part of a command, not after it."""
    if out.exists() and not force:
        raise SpecError(Problem(Mark(str(out)), "--out", "file exists; pass --force to overwrite it"))


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken parent
        return True


@app.command()
@guarded
def export(
    spec: SpecArg,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="onnx (opened by onnxruntime), torchscript (torch.jit.load) or exported-program (torch.export.load).")],
    out: Annotated[Path, typer.Option("--out", help="The file to write.", show_default=False)],
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Export these weights (from `archspec build --out` or `archspec train`) instead of a fresh initialisation.", show_default=False)] = None,
    batch: Annotated[str, typer.Option("--batch", help="'dynamic' (any batch size) or a fixed batch size N.")] = "dynamic",
    size: SizeOpt = None,
    overrides: SetOpt = None,
    force: ForceOpt = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Load the export back and compare its outputs with PyTorch's before writing it.")] = True,
    report: Annotated[TableFormat, typer.Option("--report", help="How to print what was written: table (text) or json.")] = TableFormat.table,
) -> None:
    """Export the model for use outside archspec; the file is loaded back and checked against PyTorch before it is written."""
    from archspec.plan import load_plan
    from archspec.tools.export import export_model, parse_batch

    fixed = parse_batch(batch)
    if fmt == ExportFormat.onnx:
        require("onnx" if check else "onnx-export", "archspec export --format onnx")
    plan = load_plan(spec, overrides=overrides or (), input_size=parse_size(size))
    refuse_existing(out, force)
    echo_err("archspec: loading torch ...")
    from archspec.nn.builder import build_from_plan
    from archspec.tools.export import load_weights

    model = build_from_plan(plan, "cpu")
    if checkpoint is not None:
        load_weights(model, checkpoint)
    result = export_model(model, plan, fmt.value, out, fixed, force, check, progress=echo_err)
    if report == TableFormat.json:
        from dataclasses import asdict

        from archspec.report.render import to_json

        typer.echo(to_json(asdict(result)))
        return
    weights = f"weights from {checkpoint}" if checkpoint is not None else "freshly initialised weights (pass --checkpoint for trained ones)"
    typer.echo(
        "\n".join(
            [
                f"wrote {result.path}: {plan.spec.name} as {result.format}, {result.bytes / 2**20:.1f} MiB, {weights}",
                f"input: {', '.join(map(str, result.input_shape))} (float32, NCHW); outputs: {', '.join(result.output_names)}",
            ]
            + (
                [f"checked at batch {result.checked_batch}: max |exported - PyTorch| = {result.max_abs_difference:.3g} (outputs up to {result.max_abs_output:.3g})"]
                if result.checked_batch
                else ["not checked (--no-check)"]
            )
        )
    )


@app.command()
@guarded
def bench(
    spec: SpecArg,
    device: DeviceOpt = Device.auto,
    batch: Annotated[Optional[int], typer.Option("--batch", min=1, help="Images per step (default: 128 on CUDA, 16 on the CPU).", show_default=False)] = None,
    train: Annotated[bool, typer.Option("--train", help="Also time a full training step: forward, backward, SGD step.")] = False,
    amp: Annotated[Optional[Amp], typer.Option("--amp", help="Mixed precision with torch.autocast: bf16, or fp16 (CUDA only, with a gradient scaler).", show_default=False)] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Model and input in the channels-last memory format.")] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile every model first (compilation happens during warm-up).")] = False,
    vs: Annotated[Optional[list[Peer]], typer.Option("--vs", help="Time the same network from torchvision or timm in the same run (repeatable).", show_default=False)] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", min=0, help="Untimed steps per model (default: 10 on CUDA, 3 on the CPU).", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", min=1, help="Timed steps per model (default: 50 on CUDA, 10 on the CPU).", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for torch (default: torch's, one per core).", show_default=False)] = None,
    size: SizeOpt = None,
    overrides: SetOpt = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.table,
) -> None:
    """Throughput (images/s, median step) and peak memory for inference and, with --train, training; --vs times a peer library's model alongside."""
    from archspec.tools.bench import Progress, format_table, run_bench

    for peer in vs or ():
        require(peer.value, f"archspec bench --vs {peer.value}")
    result = run_bench(
        spec,
        overrides or (),
        parse_size(size),
        device.value,
        batch,
        train,
        amp.value if amp else None,
        channels_last,
        compile_model,
        [peer.value for peer in vs or ()],
        warmup,
        iters,
        Progress(),
        threads,
    )
    if fmt == TableFormat.json:
        from archspec.report.render import to_json

        typer.echo(to_json(result))
        return
    typer.echo(format_table(result))


@app.command()
@guarded
def plot(
    specs: SpecsArg,
    out: Annotated[Path, typer.Option("--out", help="The image to write: FILE.png or FILE.svg.", show_default=False)],
    vs: Annotated[Optional[list[str]], typer.Option("--vs", help="Baseline spec to draw (repeatable; default vgg19).", show_default=False)] = None,
    size: SizeOpt = None,
    overrides: SetOpt = None,
    title: Annotated[Optional[str], typer.Option("--title", help="The chart's title.", show_default=False)] = None,
    force: ForceOpt = False,
) -> None:
    """Draw parameters against FLOPs, one labelled point per spec and per baseline (the cost-versus-VGG chart)."""
    from archspec.tools.plot import image_format, plot_cost

    image_format(out)
    refuse_existing(out, force)
    require("plot", "archspec plot")
    points = plot_cost(specs, vs or ["vgg19"], out, parse_size(size), overrides or (), force, title)
    echo_err(f"wrote {out}: {len(points)} points ({', '.join(p['label'] for p in points)})")
