"""Design spaces: `archspec sample`, `archspec fit` and `archspec plot-samples`. None of them imports torch;
plot-samples imports matplotlib when it draws."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import SetOpt, SpecArg, TitleOpt, echo_err, emit, guarded, require, usage_error
from archspec.errors import printable

OutFolderOpt = Annotated[
    Path,
    typer.Option(
        "--out",
        help="The folder to write the samples into (new or empty, unless --force).",
        metavar="DIR",
        show_default=False,
    ),
]

ForceFolderOpt = Annotated[
    bool, typer.Option("--force", help="Write into a non-empty --out folder (files of the same names are replaced).")
]
ForceFileOpt = Annotated[bool, typer.Option("--force", help="Overwrite --out (regular files only).")]


class Scale(str, Enum):
    depth = "depth"
    width = "width"
    both = "both"


@guarded
def sample(
    space: Annotated[
        str,
        typer.Argument(
            help="A space file: a spec whose fields may be distributions, with constraints.",
            metavar="SPACE",
            show_default=False,
        ),
    ],
    out: OutFolderOpt,
    n: Annotated[
        int, typer.Option("-n", "--count", min=1, max=1_000_000, help="How many distinct specs to keep.", metavar="N")
    ] = 100,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=(1 << 32) - 1, help="The same seed gives the same files.", metavar="S")
    ] = 0,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Name the samples NAME-0001, NAME-0002, ... (default: the space's name).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            max=256,
            help="Worker processes (default: one per CPU); the files do not depend on it.",
            metavar="J",
            show_default=False,
        ),
    ] = None,
    max_draws: Annotated[
        int | None,
        typer.Option(
            "--max-draws",
            min=1,
            help="Give up after this many draws (default: 1,000 per sample, plus 100,000).",
            metavar="M",
            show_default=False,
        ),
    ] = None,
    overrides: SetOpt = None,
    force: ForceFolderOpt = False,
) -> None:
    """Draw N distinct valid specs from a space, inside its constraints; write them with samples.csv and .json.

    Each sample is a plain spec file (NAME-0001.yaml, ...). The same seed gives the same files, with any
    number of --jobs. Rejection statistics go to stderr and samples.json.
    """
    from archspec.report.render import human, render
    from archspec.space.constraints import QUANTITIES
    from archspec.space.load import load_space
    from archspec.space.sample import SAFE_NAME, default_jobs
    from archspec.space.sample import sample as draw_samples
    from archspec.space.write import SampleFiles, check_folder
    from archspec.tools.progress import Progress

    if name is not None and not SAFE_NAME.fullmatch(name):
        raise usage_error(
            "--name",
            name,
            "a sample's name is a file name: letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    check_folder(out, force=force)
    loaded = load_space(space, overrides or ())
    # Each spec file is written (under a temporary folder) as its sample is kept; all appear at the end.
    with SampleFiles(loaded, out, seed=seed, force=force) as files:
        run = draw_samples(
            loaded,
            n=n,
            seed=seed,
            jobs=jobs or default_jobs(),
            max_draws=max_draws,
            prefix=name,
            progress=Progress(sys.stderr),
            keep=files.add,
        )
        files.finish(run)
    echo_err(statistics_text(run.statistics))
    echo_err(f"wrote {len(run.samples):,} specs to {printable(str(out))}, with samples.csv and samples.json")
    rows = []
    for quantity in QUANTITIES:
        values = sorted(getattr(record, quantity) for record in run.samples)
        rows.append(
            {
                "quantity": quantity,
                "min": human(values[0]),
                "median": human(values[len(values) // 2]),
                "max": human(values[-1]),
            }
        )
    typer.echo(render(rows, [("quantity", "quantity"), ("min", "min"), ("median", "median"), ("max", "max")], "table"))


def statistics_text(stats: object) -> str:
    """`drew 9,312 for 1,000 samples: 8,104 outside the constraints (macs 8,104), 208 repeats, 0 invalid`."""
    from archspec.space.results import SampleStats

    assert isinstance(stats, SampleStats)
    by = ", ".join(f"{name} {count:,}" for name, count in stats.refused_by.items() if count)
    line = (
        f"archspec: drew {stats.drawn:,} for {stats.accepted:,} samples: {stats.refused:,} outside the constraints"
        + (f" ({by})" if by else "")
        + f", {stats.duplicates:,} repeats, {stats.invalid:,} invalid"
    )
    for item in stats.invalid_by[:3]:
        line += f"\narchspec: {item.count:,} invalid at {item.field or '(document)'}, such as: {item.example}"
    return line


@guarded
def fit(
    spec: SpecArg,
    flops: Annotated[
        str | None,
        typer.Option(
            "--flops",
            help="Target FLOPs (fvcore's convention, as `archspec flops`), e.g. 2G.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="Target parameters, e.g. 10M.", metavar="N", show_default=False)
    ] = None,
    scale: Annotated[
        Scale, typer.Option("--scale", help="Scale the stages' depths, their widths, or both.")
    ] = Scale.both,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the spec to this file instead of stdout.", metavar="FILE", show_default=False
        ),
    ] = None,
    force: ForceFileOpt = False,
) -> None:
    """Scale a spec's depths and widths to a FLOPs or parameter target, within 2%.

    The new spec is printed (or written to --out) as `extends: SPEC` plus the fields that changed.
    """
    from archspec.files import check_output
    from archspec.space.fit import fit as fit_spec
    from archspec.space.fit import parse_target

    targets = {
        "flops": parse_target(flops, "--flops") if flops is not None else None,
        "params": parse_target(params, "--params") if params is not None else None,
    }
    if out is not None:
        check_output(out, force=force)
    result = fit_spec(spec, flops=targets["flops"], params=targets["params"], scale=scale.value, out=out)
    emit(result.text, out, force)
    echo_err(
        f"archspec: {result.name}: {result.new_flops:,} flops, {result.new_params:,} params "
        f"(from {result.flops:,} and {result.params:,}); "
        f"depths {_joined(result.depths)} -> {_joined(result.new_depths)}, "
        f"widths {_joined(result.widths)} -> {_joined(result.new_widths)}"
    )


def _joined(values: list[int]) -> str:
    return ",".join(map(str, values))


@guarded
def plot_samples(
    samples: Annotated[
        list[str],
        typer.Argument(
            help="samples.json files written by archspec sample (or their folders); one series each.",
            metavar="SAMPLES",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="The image to write: FILE.png or FILE.svg.", metavar="FILE", show_default=False),
    ],
    edf: Annotated[
        str | None,
        typer.Option(
            "--edf",
            help=(
                "Draw the empirical distribution function of this quantity (params, flops, macs, activations, "
                "depth, stages, or a drawn field such as stages.regnet.w0) instead of params against FLOPs."
            ),
            metavar="QUANTITY",
            show_default=False,
        ),
    ] = None,
    vs: Annotated[
        list[str] | None,
        typer.Option(
            "--vs",
            help="A reference spec to draw and label (repeatable; default: the stock specs among the samples).",
            metavar="SPEC",
            show_default=False,
        ),
    ] = None,
    normalize: Annotated[
        str | None,
        typer.Option(
            "--normalize",
            help="With a study's results and --edf: weight each population so that its flops (or params) "
            "distribution matches the others'.",
            metavar="QUANTITY",
            show_default=False,
        ),
    ] = None,
    title: TitleOpt = None,
    force: ForceFileOpt = False,
) -> None:
    """Draw sample files: parameters against FLOPs, or with --edf the distribution function of one quantity.

    One series per samples file; stock specs among the samples (or --vs) are drawn as labelled references.
    Given a study's results.jsonl (archspec study): one series per population, error against FLOPs (--vs
    params: against parameters), or with --edf error the error EDF (--normalize flops: complexity-normalised).
    """
    from archspec.tools.study.plot import is_results_file

    if any(is_results_file(path) for path in samples):
        draw_results_files(samples, out, edf=edf, normalize=normalize, vs=vs, title=title, force=force)
        return
    if normalize is not None:
        raise usage_error("--normalize", normalize, "weights a study's error EDF; give a results.jsonl")
    draw_sample_files(samples, out, edf=edf, references=vs, title=title, force=force)


def draw_results_files(
    paths: list[str],
    out: Path,
    *,
    edf: str | None,
    normalize: str | None,
    vs: list[str] | None,
    title: str | None,
    force: bool,
) -> None:
    """plot-samples given a study's results: the members' errors, one series per population."""
    from archspec.files import check_output
    from archspec.tools.plot import image_format
    from archspec.tools.study.plot import check_options, draw_results, is_results_file, read_results

    others = [path for path in paths if not is_results_file(path)]
    if others:
        raise usage_error("SAMPLES", others[0], "draw a study's results.jsonl files alone, without sample files")
    x_axis = check_options(edf, normalize, vs)
    image_format(out)
    check_output(out, force=force)
    records = read_results(paths)
    require(["matplotlib"], "pip install 'archspec[plot]'", "archspec plot-samples")
    drawn = draw_results(records, out=out, edf=edf, normalize=normalize, vs=x_axis, title=title, force=force)
    echo_err(f"wrote {out}: {drawn}")


def draw_sample_files(
    samples: list[str], out: Path, *, edf: str | None, references: list[str] | None, title: str | None, force: bool
) -> None:
    """plot-samples' work, shared with `archspec plot` given sample files."""
    from archspec.errors import Mark, Problem, SpecError, shorten
    from archspec.files import check_output
    from archspec.space.write import CSV_NAME, read_samples
    from archspec.tools.plot import image_format

    for path in samples:
        if Path(path).name == CSV_NAME:
            message = "the CSV is for spreadsheets; draw the samples.json beside it, or its folder"
            raise SpecError(Problem(Mark(shorten(path)), "SAMPLES", message), code=2)
    image_format(out)
    check_output(out, force=force)
    runs = [read_samples(path) for path in samples]
    require(["matplotlib"], "pip install 'archspec[plot]'", "archspec plot-samples")
    from archspec.space.plot import draw_samples, edf_quantity

    if edf is not None:
        edf_quantity(runs, edf)
    drawn = draw_samples(runs, out=out, edf=edf, references=references, title=title, force=force)
    echo_err(f"wrote {printable(str(out))}: {drawn}")


def register(app: typer.Typer) -> None:
    app.command()(sample)
    app.command()(fit)
    app.command("plot-samples")(plot_samples)
