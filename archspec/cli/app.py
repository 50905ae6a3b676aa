"""The `archspec` command line. Commands stay thin: they call library functions and print.

Results go to stdout, progress and diagnostics to stderr. A user's mistake ends
with one line per problem (`FILE:LINE:COL: field.path: message`) and exit code
1; usage errors exit 2; `--debug` shows tracebacks. torch is imported only by
the commands that build a module.
"""

from __future__ import annotations

import functools
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from archspec.errors import Mark, Problem, SpecError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Describe ResNets (and VGG) in YAML, compile them into PyTorch, and measure them.",
)
_state = {"debug": False}


class TableFormat(str, Enum):
    table = "table"
    json = "json"


class FlopsFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Counter(str, Enum):
    analytic = "analytic"
    fvcore = "fvcore"


class Amp(str, Enum):
    bf16 = "bf16"
    fp16 = "fp16"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


SpecArg = Annotated[str, typer.Argument(help="A spec file, or the name of a stock spec (see `archspec list`).", show_default=False)]
SpecsArg = Annotated[list[str], typer.Argument(help="Spec files or stock spec names.", show_default=False)]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a field by dotted path, e.g. --set stages.2.depth=36 (repeatable).", show_default=False),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to build: auto (CUDA when there is one), cpu or cuda.")]


def echo_err(text: str) -> None:
    typer.echo(text, err=True)


def fail(problems: list[Problem], code: int = 1):
    for problem in problems:
        echo_err(str(problem))
    raise typer.Exit(code=code)


def guarded(command):
    """Turn SpecErrors into located one-line messages and anything unexpected into one line too."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SpecError as exc:
            if _state["debug"]:
                traceback.print_exc()
            fail(exc.problems)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            echo_err("archspec: interrupted")
            raise typer.Exit(code=130) from None
        except Exception as exc:  # a bug, or a failure of torch itself
            if _state["debug"]:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            echo_err(f"archspec: error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)")
            raise typer.Exit(code=1) from None

    return wrapper


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks (for bug reports).")] = False) -> None:
    _state["debug"] = debug


def emit(text: str, out: Optional[Path], force: bool) -> None:
    """Print `text`, or write it atomically to `out` (kept unless `force`)."""
    if out is None:
        typer.echo(text, nl=False)
        return
    from archspec.nn.checkpoint import atomic_write

    atomic_write(out, lambda handle: handle.write(text.encode()), force=force)
    echo_err(f"wrote {out}")


def parse_size(text: Optional[str]):
    """`224` -> 224; `224x320` or `224,320` -> (224, 320)."""
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers or [0]) < 1:
        fail([Problem(Mark(f"--size {text}"), "input.size", "expected a positive size: N or HxW, for example 224 or 224x320")], code=2)
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


# --- commands that never import torch --------------------------------------------------------


@app.command()
@guarded
def validate(specs: SpecsArg, overrides: SetOpt = None) -> None:
    """Check specs; print each problem as FILE:LINE:COL: field: message. Exit 1 if any spec is invalid."""
    from archspec.plan import load_plan
    from archspec.counting.analytic import complexity

    problems: list[Problem] = []
    for source in specs:
        try:
            plan = load_plan(source, overrides=overrides or ())
        except SpecError as exc:
            if _state["debug"]:
                traceback.print_exception(exc)
            problems += exc.problems
            continue
        c = complexity(plan)
        typer.echo(f"{source}: ok ({plan.spec.name}: {c.layers} layers, {c.params:,} parameters)")
    if problems:
        fail(problems)


@app.command("list")
@guarded
def list_specs(fmt: Annotated[FlopsFormat, typer.Option("--format", help="Output format.")] = FlopsFormat.table) -> None:
    """List the stock specs with their depth, parameters and FLOPs."""
    from archspec.plan import load_plan
    from archspec.counting.analytic import complexity
    from archspec.report.render import human, render, to_json
    from archspec.lang.sources import stock_names

    rows = []
    for name in stock_names():
        plan = load_plan(name)
        c = complexity(plan)
        rows.append({"name": name, "layers": c.layers, "params": c.params, "flops": c.flops, "input": "x".join(map(str, c.input_size)), "description": plan.spec.description})
    if fmt == FlopsFormat.json:
        typer.echo(to_json(rows))
        return
    if fmt != FlopsFormat.csv:
        rows = [{**r, "params": human(r["params"]), "flops": human(r["flops"])} for r in rows]
    typer.echo(render(rows, [("name", "name"), ("layers", "layers"), ("params", "params"), ("flops", "GFLOPs (fvcore)"), ("input", "input")], fmt.value))


@app.command()
@guarded
def show(spec: SpecArg, overrides: SetOpt = None) -> None:
    """Print the fully resolved spec (extends and --set applied, generators expanded, defaults filled in) as YAML."""
    from archspec.plan import load_plan
    from archspec.report.spec import spec_yaml

    typer.echo(spec_yaml(load_plan(spec, overrides=overrides or ())))


@app.command()
@guarded
def schema(out: Annotated[Optional[Path], typer.Option("--out", help="Write to this file instead of stdout.")] = None, force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False) -> None:
    """Print the JSON Schema of the spec language (for editors: docs/archspec.schema.json)."""
    from archspec.lang.reference import schema_json

    text = schema_json()
    emit(text, out, force)


@app.command()
@guarded
def flops(
    specs: SpecsArg,
    vs: Annotated[Optional[list[str]], typer.Option("--vs", help="Baseline spec to compare against (repeatable; default vgg19).", show_default=False)] = None,
    size: Annotated[Optional[str], typer.Option("--size", help="Input size N or HxW (default: each spec's own).", show_default=False)] = None,
    overrides: SetOpt = None,
    counter: Annotated[Counter, typer.Option("--counter", help="analytic (instant, no torch) or fvcore (builds the model).")] = Counter.analytic,
    by_op: Annotated[bool, typer.Option("--by-op", help="Add a column per operator (fvcore's names).")] = False,
    fmt: Annotated[FlopsFormat, typer.Option("--format", help="Output format.")] = FlopsFormat.table,
) -> None:
    """Parameters and FLOPs of each spec, and their ratio to each baseline (VGG-19 by default)."""
    from archspec.tools.flops import compare_rows, flops_columns, format_flops_rows

    input_size = parse_size(size)
    rows = compare_rows(specs, vs or ["vgg19"], input_size, overrides or (), counter.value, progress=echo_err if counter == Counter.fvcore else None, note=echo_err)
    if fmt == FlopsFormat.json:
        from archspec.report.render import to_json

        typer.echo(to_json(rows))
        return
    baselines = list(rows[0]["vs"]) if rows else []
    columns = flops_columns(baselines, sorted({op for r in rows for op in r["flops_by_op"]}) if by_op else [])
    typer.echo(format_flops_rows(rows, columns, fmt.value))
    if fmt == FlopsFormat.table:
        typer.echo(
            "\nGFLOPs: fvcore's convention (1 fused multiply-add = 1 flop; conv, fc, norm, adaptive pool). "
            "GMACs: conv + fc multiply-adds (the paper's and torchvision's 'FLOPs'). Ratios compare with each baseline at the row's input size. Counter: " + counter.value + "."
        )


@app.command()
@guarded
def diff(a: SpecArg, b: SpecArg, overrides: SetOpt = None) -> None:
    """Show which resolved fields differ between two specs, and how parameters and FLOPs change."""
    from archspec.tools.flops import spec_diff

    typer.echo(spec_diff(a, b, overrides or ()))


@app.command()
@guarded
def paper(
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the Markdown to this file (e.g. docs/paper.md).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False,
) -> None:
    """Print the papers' published figures beside archspec's counts (the text of docs/paper.md)."""
    from archspec.tools.paper import paper_markdown

    text = paper_markdown()
    emit(text, out, force)


# --- commands that build a module -------------------------------------------------------------


@app.command()
@guarded
def build(
    spec: SpecArg,
    device: DeviceOpt = Device.auto,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size of the dummy forward pass.")] = 1,
    overrides: SetOpt = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.table,
    out: Annotated[Optional[Path], typer.Option("--out", help="Save a checkpoint (resolved spec + state_dict) here.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out; skip the memory check.")] = False,
) -> None:
    """Build the model on the device, run a dummy forward pass and print a per-stage report."""
    from archspec.tools.build import build_report

    text = build_report(spec, device.value, batch, overrides or (), fmt.value, out, force, progress=echo_err)
    typer.echo(text)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except SpecError as exc:  # raised outside a command (should not happen)
        fail(exc.problems)


def _register_optional_commands() -> None:
    """Commands in their own modules register on `app` when imported."""
    import importlib

    for module in ("archspec.cli.tools", "archspec.cli.train"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
