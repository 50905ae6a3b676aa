"""`archspec flops` and `archspec plot`: counts side by side, and the cost-versus-VGG chart. torch is imported
only to count with fvcore or to count another library's model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import (
    Counter,
    ForceOpt,
    GuardForceOpt,
    OutputFormat,
    SetOpt,
    SizeOpt,
    SpecsArg,
    TitleOpt,
    echo_err,
    guarded,
    parse_size,
    require,
    usage_error,
)
from archspec.errors import printable
from archspec.report.render import to_json

VsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--vs",
        help="A baseline: a spec, or torchvision:NAME / timm:NAME (repeatable; default vgg19).",
        metavar="BASELINE",
        show_default=False,
    ),
]


@guarded
def flops(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="Spec files, stock spec names, or torchvision:NAME / timm:NAME.", metavar="MODEL", show_default=False
        ),
    ],
    vs: VsOpt = None,
    size: SizeOpt = None,
    overrides: SetOpt = None,
    counter: Annotated[
        Counter, typer.Option("--counter", help="analytic (instant, no torch) or fvcore (builds the model).")
    ] = Counter.analytic,
    by_op: Annotated[bool, typer.Option("--by-op", help="Add a column per operator (fvcore's names).")] = False,
    by_module: Annotated[
        bool,
        typer.Option(
            "--by-module", help="One spec's counts per module, named as in model.named_modules() (analytic, no torch)."
        ),
    ] = False,
    depth: Annotated[
        int,
        typer.Option("--depth", min=0, max=64, help="With --by-module: the deepest module level to list.", metavar="N"),
    ] = 2,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
    force: GuardForceOpt = False,
) -> None:
    """Parameters and FLOPs of each spec or library model, and their ratio to each baseline (VGG-19 by default)."""
    from archspec.report.tables import flops_table, modules_table
    from archspec.tools.flops import compare, module_rows

    input_size = parse_size(size)
    if by_module:
        _check_by_module(specs, vs, counter, by_op)
        modules = module_rows(specs[0], overrides=overrides or (), input_size=input_size, depth=depth)
        typer.echo(to_json(modules) if fmt == OutputFormat.json else modules_table(modules, fmt.value))
        return
    progress = (
        echo_err
        if counter == Counter.fvcore
        or any(":" in s and not s.endswith((".yaml", ".yml")) for s in [*specs, *(vs or [])])
        else None
    )
    rows = compare(
        specs,
        baselines=vs or ["vgg19"],
        overrides=overrides or (),
        input_size=input_size,
        counter=counter.value,
        force=force,
        progress=progress,
        note=echo_err,
    )
    typer.echo(to_json(rows) if fmt == OutputFormat.json else flops_table(rows, fmt.value, by_op=by_op))


def _check_by_module(specs: list[str], vs: list[str] | None, counter: Counter, by_op: bool) -> None:
    """--by-module lists one spec's modules, counted from its plan: no library models, baselines or fvcore."""
    from archspec.errors import Mark, Problem, SpecError, shorten
    from archspec.lang.refs import parse_model_ref

    def refuse(where: str, message: str) -> SpecError:
        return SpecError(Problem(Mark(shorten(where)), "by-module", message), code=2)

    if len(specs) > 1:
        raise refuse("--by-module", f"lists the modules of one spec; got {len(specs)} ({shorten(', '.join(specs))})")
    if parse_model_ref(specs[0]) is not None:
        whole = f"`archspec flops {shorten(specs[0])}` counts it whole"
        raise refuse(specs[0], f"per-module counts are read off a spec's plan and a library model has none; {whole}")
    for option, given in (("--vs", bool(vs)), ("--counter fvcore", counter == Counter.fvcore), ("--by-op", by_op)):
        if given:
            raise refuse(
                option, f"--by-module lists one spec's modules, analytically and without baselines; leave out {option}"
            )


@guarded
def plot(
    specs: SpecsArg,
    out: Annotated[
        Path,
        typer.Option("--out", help="The image to write: FILE.png or FILE.svg.", metavar="FILE", show_default=False),
    ],
    vs: Annotated[
        list[str] | None,
        typer.Option(
            "--vs", help="Baseline spec to draw (repeatable; default vgg19).", metavar="BASELINE", show_default=False
        ),
    ] = None,
    size: SizeOpt = None,
    overrides: SetOpt = None,
    title: TitleOpt = None,
    force: ForceOpt = False,
) -> None:
    """Draw parameters against FLOPs, one labelled point per spec and per baseline (the cost-versus-VGG chart).

    Given the samples.json files (or folders) of `archspec sample` instead of specs, it draws them as
    plot-samples does, with --vs as the labelled references.
    """
    from archspec.errors import Mark, Problem, SpecError, shorten
    from archspec.files import check_output
    from archspec.space.write import is_samples_file
    from archspec.tools.plot import image_format, plot_cost

    sample_files = [spec for spec in specs if is_samples_file(spec)]
    if sample_files:
        from archspec.cli.space import draw_sample_files

        first = sample_files[0]
        if len(sample_files) < len(specs):
            other = next(spec for spec in specs if spec not in sample_files)
            message = (
                f"draw specs or sample files, not both ({shorten(first)} is a sample file); "
                "draw samples with reference specs as `archspec plot-samples SAMPLES --vs SPEC`"
            )
            raise SpecError(Problem(Mark(shorten(other)), "SPEC", message), code=2)
        for option, given in (("--size", size), ("--set", overrides[0] if overrides else None)):
            if given:
                raise usage_error(option, given, f"applies to specs; the counts in {shorten(first)} are fixed")
        draw_sample_files(sample_files, out, edf=None, references=vs, title=title, force=force)
        return
    image_format(out)
    check_output(out, force=force)
    require(["matplotlib"], "pip install 'archspec[plot]'", "archspec plot")
    points = plot_cost(
        specs,
        baselines=vs or ["vgg19"],
        out=out,
        input_size=parse_size(size),
        overrides=overrides or (),
        force=force,
        title=title,
    )
    echo_err(f"wrote {printable(str(out))}: {len(points)} points ({', '.join(p.name for p in points)})")


def register(app: typer.Typer) -> None:
    app.command()(flops)
    app.command()(plot)
