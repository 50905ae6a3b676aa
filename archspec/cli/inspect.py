"""Commands that read specs and never import torch: validate, list, show, diff, schema, paper."""

from __future__ import annotations

import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from archspec.cli.common import (
    STATE,
    OutputFormat,
    SetOpt,
    SpecArg,
    SpecsArg,
    emit,
    fail,
    guarded,
    is_checkpoint,
    usage_error,
)
from archspec.errors import Mark, Problem, SpecError, printable

OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write to this file instead of stdout.", metavar="FILE", show_default=False)
]
ForceOutOpt = Annotated[bool, typer.Option("--force", help="Overwrite --out (regular files only).")]


@guarded
def validate(specs: SpecsArg, overrides: SetOpt = None) -> None:
    """Check specs (and design spaces); print each problem as FILE:LINE:COL: field: message.
    Exit 1 if any is invalid."""
    from archspec.counting.analytic import complexity
    from archspec.lang.sources import load_document
    from archspec.plan import plan_document
    from archspec.space.load import is_space, load_space
    from archspec.space.sample import check_draws

    problems: list[Problem] = []
    for source in specs:
        try:
            doc = load_document(source, overrides or ())
            if is_space(doc):
                space = load_space(doc)
                check_draws(space)  # a space none of whose draws is a valid spec is an error, not an ok
                typer.echo(printable(f"{source}: ok ({space.summary()})"))
                continue
            plan = plan_document(doc)
        except SpecError as exc:
            if STATE["debug"]:
                traceback.print_exception(exc)
            problems += exc.problems
            continue
        c = complexity(plan)
        typer.echo(printable(f"{source}: ok ({plan.spec.name}: {c.layers} layers, {c.params:,} parameters)"))
    if problems:
        fail(problems)


@guarded
def list_specs(
    pattern: Annotated[
        str | None,
        typer.Argument(
            help="Only the names that match this shell pattern, e.g. 'resnet*'.", metavar="PATTERN", show_default=False
        ),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
) -> None:
    """List the stock specs with their depth, parameters and FLOPs."""
    from archspec.api import list_specs as names
    from archspec.counting.analytic import complexity
    from archspec.plan import load_plan
    from archspec.report.render import to_json
    from archspec.report.results import SpecSummary
    from archspec.report.tables import list_table

    rows = []
    for name in names(pattern):
        plan = load_plan(name)
        c = complexity(plan)
        rows.append(
            SpecSummary(name, c.layers, c.params, c.flops, "x".join(map(str, c.input_size)), plan.spec.description)
        )
    if pattern is not None and not rows:
        fail([Problem(Mark(pattern), "pattern", "no stock spec matches; `archspec list` shows them all")])
    typer.echo(to_json(rows) if fmt == OutputFormat.json else list_table(rows, fmt.value))


@guarded
def show(
    spec: Annotated[
        str,
        typer.Argument(
            help="A spec file, a stock spec name, or a checkpoint (.pt) whose spec to print.",
            metavar="SPEC",
            show_default=False,
        ),
    ],
    overrides: SetOpt = None,
) -> None:
    """Print the fully resolved spec (extends and --set applied, generators expanded, defaults filled in) as YAML."""
    from archspec.plan import load_plan
    from archspec.report.spec import spec_yaml

    if is_checkpoint(spec):
        from archspec.lang.sources import apply_override
        from archspec.lang.yamldoc import from_mapping
        from archspec.nn.checkpoint import read_checkpoint
        from archspec.plan import plan_document

        data, _ = read_checkpoint(spec)
        doc = from_mapping(data, source=f"{spec} (embedded spec)")
        for item in overrides or ():
            doc = apply_override(doc, item)
        typer.echo(spec_yaml(plan_document(doc)))
        return
    typer.echo(spec_yaml(load_plan(spec, overrides=overrides or ())))


@guarded
def schema(out: OutOpt = None, force: ForceOutOpt = False) -> None:
    """Print the JSON Schema of the spec language (for editors: docs/archspec.schema.json)."""
    from archspec.lang.reference import schema_json

    emit(schema_json(), out, force)


@guarded
def diff(a: SpecArg, b: SpecArg, overrides: SetOpt = None) -> None:
    """Show which resolved fields differ between two specs, and how parameters and FLOPs change."""
    from archspec.report.tables import diff_text
    from archspec.tools.flops import spec_diff

    typer.echo(diff_text(spec_diff(a, b, overrides=overrides or ())))


class PaperTable(str, Enum):
    convnext = "convnext"


@guarded
def paper(
    table: Annotated[
        PaperTable | None,
        typer.Argument(
            help="One paper's table instead of the whole text: convnext (the roadmap from ResNet-50 to ConvNeXt-T, "
            "beside the ConvNeXt paper's Figure 2).",
            metavar="TABLE",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat | None,
        typer.Option("--format", help="Output format of a TABLE (default table).", show_default=False),
    ] = None,
    out: OutOpt = None,
    force: ForceOutOpt = False,
) -> None:
    """Print the papers' published figures beside archspec's counts (the text of docs/paper.md), or one TABLE."""
    if table is None:
        if fmt is not None:
            raise usage_error("--format", fmt.value, "applies to a TABLE (archspec paper convnext --format json)")
        from archspec.tools.paper import paper_markdown

        emit(paper_markdown(), out, force)
        return
    from archspec.report.render import to_json
    from archspec.tools.roadmap import convnext_roadmap, roadmap_table

    steps = convnext_roadmap()
    chosen = fmt or OutputFormat.table
    emit((to_json(steps) if chosen == OutputFormat.json else roadmap_table(steps, chosen.value)) + "\n", out, force)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command("list")(list_specs)
    app.command()(show)
    app.command()(diff)
    app.command()(schema)
    app.command()(paper)
