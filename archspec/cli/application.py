"""The `archspec` command line: the Typer app, with every command group registered explicitly.

Commands stay thin: they call library functions and print. Results go to stdout, progress
and diagnostics to stderr. torch is imported only by the commands that build a module.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated, Any

import typer

from archspec.cli import common, inspect, measure, models, space, study, train
from archspec.cli.common import STATE, Terminated, echo_err, fail
from archspec.errors import SpecError, printable
from archspec.tools.interrupt import ending, interrupted
from archspec.tools.interrupt import install as install_interrupt_handler

HELP = "Describe ResNets, VGGs and RegNets in YAML, compile them into PyTorch, and measure them."


def _version(value: bool) -> None:
    if value:
        from archspec import __version__

        typer.echo(f"archspec {__version__}")
        raise typer.Exit()


def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks (for bug reports); also accepted after the command.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print archspec's version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    STATE["debug"] = debug or STATE["debug_in_argv"]


def _words_not_types() -> None:
    """Typer prints an argument's Python type beside its metavar (`SPEC <str>`); archspec's metavars already say
    what to give in words, so the type is left out where a metavar is set."""
    try:
        from typer.core import TyperArgument
    except ImportError:  # pragma: no cover - a Typer without its own argument class prints no type
        return
    original = getattr(TyperArgument, "display_type", None)
    if original is None or getattr(original, "_archspec", False):
        return

    def display_type(self: Any, ctx: Any) -> str | None:
        return None if self.metavar else original(self, ctx)

    display_type._archspec = True  # type: ignore[attr-defined]
    # Typer declares display_type as returning str; None is what leaves the type out.
    TyperArgument.display_type = display_type  # type: ignore[method-assign,assignment]


def make_app() -> typer.Typer:
    _words_not_types()
    app = typer.Typer(
        add_completion=True, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False, help=HELP
    )
    app.callback()(_options)
    for group in (inspect, measure, models, space, study, train):
        group.register(app)
    return app


app = make_app()


try:  # typer vendors click since 0.2x; before, it used click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def run(argv: list[str] | None = None) -> None:
    """Run the app on `argv` (default: the process's arguments) and exit with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    # `--debug` may come after the command too: take it out wherever it is (before a `--`).
    end = args.index("--") if "--" in args else len(args)
    STATE["debug_in_argv"] = "--debug" in args[:end]
    args = [a for i, a in enumerate(args) if not (a == "--debug" and i < end)]
    signal.signal(signal.SIGTERM, _terminate)
    install_interrupt_handler()
    try:
        status = app(args=args, prog_name="archspec", standalone_mode=False)
    except click_exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `archspec`: the help is the message
            echo_err(exc.format_message())
            sys.exit(2)
        # One line, as every other mistake: which command, what is wrong, where to look.
        command = exc.ctx.command_path if exc.ctx is not None else "archspec"
        echo_err(f"{command}: {printable(exc.format_message())} (see --help)")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        ending()
        echo_err("archspec: interrupted")
        sys.exit(130)
    except click_exceptions.ClickException as exc:
        echo_err(f"archspec: {printable(exc.format_message())}")
        sys.exit(exc.exit_code)
    except SpecError as exc:  # raised outside a command (should not happen)
        fail(exc.problems, exc.code)
    except Terminated:
        echo_err("archspec: terminated")
        sys.exit(143)
    except BrokenPipeError:
        _closed_stdout()
    if interrupted() and status in (0, None):  # a Ctrl-C that library code swallowed: the user still asked to stop
        ending()
        echo_err("archspec: interrupted")
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)


def _closed_stdout() -> None:
    """The reader of stdout went away (`archspec validate ... | head -1`): stop quietly, as a pipe's writer does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(141)


__all__ = ["app", "common", "make_app", "run"]
