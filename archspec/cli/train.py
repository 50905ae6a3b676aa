"""`archspec train`: the command; the work is in `archspec.tools.train.loop`. torch is imported only when it runs."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import (
    Amp,
    Device,
    DeviceOpt,
    SetOpt,
    SpecsArg,
    TableFormat,
    WeightsOpt,
    echo_err,
    guarded,
    weights_file,
)
from archspec.errors import SpecError


class Schedule(str, Enum):
    step = "step"
    cosine = "cosine"


@guarded
def train(
    specs: SpecsArg,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help=(
                "digits (scikit-learn's 8x8 digits), synthetic[:N] (random images of the spec's input shape), "
                "cifar10:DIR "
                "(the python batches, nothing is downloaded) or imagefolder:DIR (one subfolder per class; "
                "DIR/train + DIR/val when present)."
            ),
            metavar="DATA",
        ),
    ] = "digits",
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            min=1,
            max=1_000_000,
            help="Epochs; the step schedule divides the rate by 10 at 1/2 and 3/4 of them. With --resume it may grow.",
            metavar="N",
        ),
    ] = 30,
    batch: Annotated[
        int,
        typer.Option(
            "--batch", min=1, max=2**31 - 1, help="Global batch size (shared among torchrun's processes).", metavar="N"
        ),
    ] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Initial learning rate (SGD).", metavar="RATE")] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.", metavar="M")] = 0.9,
    weight_decay: Annotated[
        float, typer.Option("--weight-decay", help="L2 weight decay, on every parameter as in the paper.", metavar="W")
    ] = 1e-4,
    schedule: Annotated[
        Schedule, typer.Option("--schedule", help="step: /10 at 1/2 and 3/4 of training (the paper); cosine: to zero.")
    ] = Schedule.step,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            min=0,
            max=2**63 - 1,
            help="Seeds the initial weights and the data order (seed + epoch).",
            metavar="N",
        ),
    ] = 0,
    device: DeviceOpt = Device.auto,
    amp: Annotated[
        Amp | None,
        typer.Option(
            "--amp", help="Mixed precision: bf16 (CPU or CUDA) or fp16 (CUDA, with loss scaling).", show_default=False
        ),
    ] = None,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Channels-last memory format for the model and the batches.")
    ] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model (needs a C++ compiler on the CPU).")
    ] = False,
    weights: WeightsOpt = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=4096,
            help="CPU threads for torch (default: torch's, one per core; fewer run faster on a busy machine).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for run.json and, per spec, metrics.jsonl, metrics.csv, state.pt (to resume) and model.pt "
            "(the checkpoint).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out after its last finished epoch.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Start over in an --out that holds a previous run; overwrite --plot; skip the memory check."
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Draw training loss and held-out error per epoch (.png, .svg or .pdf).",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    overrides: SetOpt = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.table,
) -> None:
    """Train each spec in turn with the same data, seed and recipe; print final loss and errors.

    Defaults are the paper's CIFAR recipe (SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128,
    lr /10 at 1/2 and 3/4 of training). Under `torchrun --nproc_per_node N -m archspec train ...` the
    same command trains with DistributedDataParallel; only rank 0 prints and writes files. With --weights
    every spec starts from those weights (fine-tuning; a classifier of another size starts fresh).
    """
    from archspec.tools.progress import Progress
    from archspec.tools.train.loop import Options, Recipe, is_main_process
    from archspec.tools.train.loop import train as run

    try:
        recipe = Recipe(epochs, batch, lr, momentum, weight_decay, schedule.value, seed, amp.value if amp else None)
        options = Options(device.value, channels_last, compile_model, threads)
        weights = weights_file(weights)
        progress = Progress(sys.stderr, prefix="", enabled=is_main_process())
        results = run(
            specs, data, recipe, options, overrides or (), out, resume, force, plot, progress, weights=weights
        )
    except (SpecError, KeyboardInterrupt) as exc:
        if not is_main_process():
            # Every rank meets the same problem and rank 0 alone reports it; torchrun stops the whole
            # job as soon as one process exits, so give rank 0 a moment to print first.
            time.sleep(1)
            raise typer.Exit(code=1) from None
        if isinstance(exc, KeyboardInterrupt) and out is not None:
            echo_err(f"archspec: the last finished epoch is saved in {out}; add --resume to continue")
        raise
    if not is_main_process():
        return
    from archspec.report.render import to_json
    from archspec.report.tables import train_table

    if fmt == TableFormat.json:
        typer.echo(to_json({"data": data, "recipe": asdict(recipe), "results": [r.as_dict() for r in results]}))
        return
    typer.echo(train_table(results))


def register(app: typer.Typer) -> None:
    app.command()(train)
