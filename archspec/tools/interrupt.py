"""Ctrl-C that ends a command every time: torch's exporter, a lazy import and other library code can catch the
KeyboardInterrupt a SIGINT raises (and report it as their own error, or not at all); the handler remembers
the signal, so that the command still ends as interrupted (exit 130) and writes nothing afterwards.

Once archspec has said it was interrupted (`ending`), a further Ctrl-C changes nothing: the process ends with
exit 130 however often the user presses it, while the command unwinds and while the interpreter shuts down."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_seen = threading.Event()
_ending = False  # a plain flag: setting it runs no Python code that a SIGINT could interrupt


def _handler(signum: int, frame: FrameType | None) -> None:
    _seen.set()
    if not _ending:
        raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT from Python's default handler (a SIGINT that was ignored when the process started, as in
    a background job, stays ignored)."""
    global _ending
    _ending = False
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is (
        signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _handler)


def interrupted() -> bool:
    """Whether a SIGINT has arrived since `install`, whatever became of its KeyboardInterrupt."""
    return _seen.is_set()


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt when a SIGINT arrived, even one that library code swallowed: call it before a write."""
    if _seen.is_set():
        raise KeyboardInterrupt


def ending(*, process: bool = False) -> None:
    """The command ends as interrupted: call it before saying so. From then on a SIGINT raises nothing, and it is
    ignored for the rest of the process where archspec took SIGINT over (`install`), or with `process` (the
    console entry point, which ends the process next). Python puts back the default action of every signal it
    handles as it shuts down (after the atexit callbacks, while it frees the modules: half a second with torch
    loaded), and a Ctrl-C then would end the process by SIGINT instead of with exit 130."""
    global _ending
    _ending = True
    if threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is _handler or (process and handler is signal.default_int_handler):
        # signal.signal first runs the handler of a SIGINT already pending (archspec's now raises nothing).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
