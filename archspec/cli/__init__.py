"""The `archspec` command line. `main` is the console entry point; `app` is the Typer app (for tests).

The entry point imports nothing heavy before it can catch Ctrl-C: an interrupt while the
program starts ends with exit code 130 and one line, not a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from archspec.tools.interrupt import ending  # light (signal, threading): what an interrupt needs at the end


def main() -> None:
    """Console entry point."""
    try:
        from archspec.cli.application import run

        run()
    except KeyboardInterrupt:
        ending(process=True)
        sys.stderr.write("archspec: interrupted\n")
        sys.exit(130)


def __getattr__(name: str) -> Any:
    if name == "app":
        from archspec.cli.application import app

        return app
    raise AttributeError(name)
