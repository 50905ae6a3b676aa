"""`archspec study`: train populations of sampled specs on Ray and compare their error distributions.

The work is in `archspec.tools.study`; Ray (the `study` extra) and torch are imported only when it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import Amp, TableFormat, Terminated, echo_err, guarded, require
from archspec.cli.train import Schedule


@guarded
def study(
    samples: Annotated[
        list[str],
        typer.Argument(
            help=(
                "Populations: folders written by archspec sample (or their samples.json), spec files, globs of "
                "spec files, or stock spec names; one population each."
            ),
            metavar="SAMPLES",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="The study's folder: study.json, results.jsonl, results.csv and members/POPULATION/NAME/.",
            metavar="DIR",
            show_default=False,
        ),
    ],
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="Name the populations, in the order of SAMPLES (repeatable; default: each folder's name).",
            metavar="LABEL",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="As archspec train's: digits, synthetic[:N], cifar10:DIR or imagefolder:DIR.",
            metavar="DATA",
        ),
    ] = "digits",
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, max=1_000_000, help="Epochs of every member.", metavar="N")
    ] = 10,
    batch: Annotated[int, typer.Option("--batch", min=1, max=2**31 - 1, help="Batch size.", metavar="N")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Initial learning rate (SGD).", metavar="RATE")] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.", metavar="M")] = 0.9,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="L2 weight decay.", metavar="W")] = 1e-4,
    schedule: Annotated[
        Schedule, typer.Option("--schedule", help="step: /10 at 1/2 and 3/4 of training; cosine: to zero.")
    ] = Schedule.step,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, max=2**63 - 1, help="Seeds every member's weights and data order alike.", metavar="N"
        ),
    ] = 0,
    amp: Annotated[
        Amp | None, typer.Option("--amp", help="Mixed precision: bf16 or fp16 (CUDA).", show_default=False)
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=4096,
            help="Members trained at once by the embedded Ray (default: the CPUs this process may use).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=1,
            max=1024,
            help="torch threads (and Ray CPUs) per member; the errors do not depend on --workers.",
            metavar="N",
        ),
    ] = 1,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Run on an existing Ray cluster (HOST:PORT; default: RAY_ADDRESS, else an embedded Ray).",
            metavar="HOST:PORT",
            show_default=False,
        ),
    ] = None,
    gpus_per_member: Annotated[
        float,
        typer.Option(
            "--gpus-per-member", min=0.0, max=64.0, help="GPUs per member (0: train on the CPU).", metavar="F"
        ),
    ] = 0.0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the study in --out: train only the members without a record.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start over in an --out that holds a study (its results are removed).")
    ] = False,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format of the summary.")] = TableFormat.table,
) -> None:
    """Train every member of one or more populations with one recipe, on Ray; summarise their errors.

    Members differ only by their architecture: the data, seed and recipe are the same for all. Each finished
    member is appended to DIR/results.jsonl (and results.csv); --resume trains only the members without a
    record. The summary gives per population the error's min, median and max, and for each pair of
    populations the KS distance between their error EDFs, which lies left, and a bootstrap interval on the
    difference of their median errors.
    """
    require(["ray"], "pip install 'archspec[study]'", "archspec study")
    from archspec.tools.progress import Progress
    from archspec.tools.study.engine import run_study
    from archspec.tools.study.members import populations
    from archspec.tools.study.summary import summarize
    from archspec.tools.train.recipe import Recipe

    recipe = Recipe(epochs, batch, lr, momentum, weight_decay, schedule.value, seed, amp.value if amp else None)
    found = populations(samples, labels or ())
    if gpus_per_member > 0 and not (address or os.environ.get("RAY_ADDRESS")):
        check_local_gpus(gpus_per_member)
    try:
        records = run_study(
            found,
            out,
            data=data,
            recipe=recipe,
            workers=workers,
            threads=threads,
            address=address,
            gpus_per_member=gpus_per_member,
            resume=resume,
            force=force,
            progress=Progress(sys.stderr, prefix="archspec"),
        )
    except (KeyboardInterrupt, Terminated):
        results = out / "results.jsonl"
        if results.is_file():
            echo_err(f"archspec: the finished members are recorded in {results}; add --resume to continue")
        raise
    echo_err(f"archspec: {len(records)} records in {out / 'results.jsonl'}")
    summary = summarize(records, [population.label for population in found])
    if fmt == TableFormat.json:
        from archspec.report.render import to_json

        typer.echo(to_json(summary))
        return
    typer.echo(summary_table(summary))


def check_local_gpus(per_member: float) -> None:
    """An embedded Ray waits, silently and for ever, for GPUs a member asks for and this machine lacks: refuse."""
    import torch

    from archspec.errors import Mark, Problem, SpecError

    here = torch.cuda.device_count()
    if per_member > here:
        found = "torch sees no CUDA device here" if here == 0 else f"torch sees {here} CUDA device(s) here"
        raise SpecError(
            Problem(
                Mark(f"--gpus-per-member {per_member:g}"),
                "gpus-per-member",
                f"{found}; use 0 to train on the CPU, or --address a Ray cluster with GPUs",
            )
        )


def summary_table(summary: object) -> str:
    from archspec.report.render import render
    from archspec.tools.study.summary import StudySummary

    assert isinstance(summary, StudySummary)

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [
        {
            "population": p.name,
            "members": p.members,
            "ok": p.ok,
            "failed": p.failed,
            "min": cell(p.min_error),
            "median": cell(p.median_error),
            "max": cell(p.max_error),
        }
        for p in summary.populations
    ]
    columns = [(key, key if key not in ("min", "median", "max") else f"{key} error") for key in rows[0]] if rows else []
    text = render(rows, columns, "table") if rows else "no records"
    if summary.pairs:
        pair_rows = [
            {
                "pair": f"{p.first} vs {p.second}",
                "ks": f"{p.ks:.3f}",
                "left": p.left,
                "median": f"{p.median_difference:+.4f} [{p.interval[0]:+.4f}, {p.interval[1]:+.4f}]",
            }
            for p in summary.pairs
        ]
        pair_columns = [
            ("pair", "pair"),
            ("ks", "KS distance"),
            ("left", "lies left"),
            ("median", "median error difference [95% bootstrap]"),
        ]
        text += "\n\n" + render(pair_rows, pair_columns, "table")
    return text


def register(app: typer.Typer) -> None:
    app.command()(study)
