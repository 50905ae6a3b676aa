"""What every command shares: option types, the error policy, output helpers.

A user's mistake ends with one line per problem (`FILE:LINE:COL: field.path: message`) and exit
code 1; usage errors exit 2; an interrupt 130; SIGTERM 143; `--debug` shows tracebacks.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from archspec.errors import Mark, Problem, SpecError, printable
from archspec.lang.yamldoc import CHECKPOINT_MAGIC
from archspec.tools.interrupt import ending, interrupted

# `debug`: show tracebacks; `debug_in_argv`: --debug was given after the command (see `archspec.cli.application.run`).
STATE = {"debug": False, "debug_in_argv": False}
F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """Raised by the SIGTERM handler, so that writes in progress clean up on the way out."""


class TableFormat(str, Enum):
    table = "table"
    json = "json"


class OutputFormat(str, Enum):
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


SpecArg = Annotated[
    str,
    typer.Argument(
        help="A spec file, or the name of a stock spec (see `archspec list`).", metavar="SPEC", show_default=False
    ),
]
SpecsArg = Annotated[
    list[str], typer.Argument(help="Spec files or stock spec names.", metavar="SPEC", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field by dotted path, e.g. --set stages.2.depth=36 (repeatable).",
        metavar="KEY=VALUE",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where to build: auto (CUDA when there is one), cpu or cuda.")
]
SizeOpt = Annotated[
    str | None,
    typer.Option("--size", help="Input size N or HxW (default: the spec's own).", metavar="N|HxW", show_default=False),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite --out (regular files only); skip the memory check.")]
# For the commands that build a model but write no file (bench, flops).
GuardForceOpt = Annotated[bool, typer.Option("--force", help="Skip the memory check before a model is built.")]
TitleOpt = Annotated[
    str | None, typer.Option("--title", help="The chart's title.", metavar="TITLE", show_default=False)
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help=(
            "Load these weights: a torchvision or timm state_dict (.pth, .safetensors) or an archspec checkpoint; "
            "checked against the spec first."
        ),
        metavar="FILE",
        show_default=False,
    ),
]


def weights_file(path: Path | None) -> Path | None:
    """`--weights` checked for existence and kind (a regular file) before torch is loaded."""
    if path is not None:
        from archspec.files import check_input_file

        check_input_file(path, option="--weights", noun="weights file")
    return path


def is_checkpoint(source: str) -> bool:
    """A torch file (a zip archive, as `build --out` and `train` write) rather than YAML text."""
    try:
        with open(source, "rb") as handle:
            return handle.read(4) == CHECKPOINT_MAGIC
    except (OSError, ValueError):
        return False


def spec_source(spec: str, weights: Path | None) -> tuple[Any, Path | None]:
    """What a SPEC argument stands for, and the weights to load: a checkpoint given as SPEC is its embedded spec
    (validated like any spec; --set applies to it) and, unless --weights names others, its own weights."""
    if not is_checkpoint(spec):
        return spec, weights
    from archspec.lang.yamldoc import from_mapping
    from archspec.nn.checkpoint import read_checkpoint

    echo_err(f"archspec: reading the spec and weights of checkpoint {spec} ...")
    data, _ = read_checkpoint(spec)
    return from_mapping(data, source=f"{spec} (embedded spec)"), weights if weights is not None else Path(spec)


def echo_err(text: str) -> None:
    """A diagnostic on stderr; control characters (from a path, say) are escaped, so each line stays one line."""
    typer.echo("\n".join(printable(line) for line in text.split("\n")), err=True)


def fail(problems: list[Problem], code: int = 1) -> None:
    for problem in problems:
        echo_err(str(problem))
    raise typer.Exit(code=code)


def usage_error(option: str, value: str, message: str, field: str | None = None) -> SpecError:
    """A mistake in how a command was called (exit code 2); `field` is the spec field it stands for, if any."""
    return SpecError(Problem(Mark(f"{option} {value}"), field or option.lstrip("-"), message), code=2)


def guarded(command: F) -> F:
    """Turn SpecErrors into located one-line messages and anything unexpected into one line too."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SpecError as exc:
            if STATE["debug"]:
                traceback.print_exc()
            fail(exc.problems, exc.code)
        except (typer.Exit, Terminated):
            raise
        except KeyboardInterrupt:
            ending()
            echo_err("archspec: interrupted")
            raise typer.Exit(code=130) from None
        except BrokenPipeError:
            raise
        except MemoryError:
            echo_err("archspec: out of memory; use a smaller --batch or a smaller spec")
            raise typer.Exit(code=1) from None
        except Exception as exc:  # a bug, or a failure of torch itself
            if interrupted():  # a Ctrl-C that library code caught and reported as its own error
                ending()
                echo_err("archspec: interrupted")
                raise typer.Exit(code=130) from None
            if STATE["debug"]:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            echo_err(
                f"archspec: internal error: {type(exc).__name__}: {first} (a bug; rerun with --debug for the traceback)"
            )
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def emit(text: str, out: Path | None, force: bool) -> None:
    """Print `text`, or write it atomically to `out` (kept unless `force`)."""
    if out is None:
        typer.echo(text, nl=False)
        return
    from archspec.files import atomic_write

    atomic_write(out, lambda handle: handle.write(text.encode()), force=force)
    echo_err(f"wrote {printable(str(out))}")


def parse_size(text: str | None) -> int | tuple[int, int] | None:
    """`224` -> 224; `224x320` or `224,320` -> (224, 320); ASCII digits only, at most 65536."""
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    numbers = [int(part) for part in parts if part.isascii() and part.isdigit() and len(part) <= 6]
    if len(numbers) != len(parts) or len(numbers) not in (1, 2) or min(numbers) < 1 or max(numbers) > 65536:
        raise usage_error(
            "--size",
            text,
            "expected a positive size: N or HxW, for example 224 or 224x320 (at most 65536)",
            "input.size",
        )
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


def require(modules: list[str], install: str, command: str) -> None:
    """Exit with one line saying what to install when an optional package is missing."""
    import importlib.util

    def missing(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken parent
            return True

    absent = [m for m in modules if missing(m)]
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        echo_err(
            f"archspec: {command} needs {', '.join(absent)}, which {verb} not installed; install it with: {install}"
        )
        raise typer.Exit(code=1)
