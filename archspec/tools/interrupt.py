"""Ctrl-C that ends a command every time: torch's exporter, a lazy import and other library code can catch the
KeyboardInterrupt a SIGINT raises (and report it as their own error, or not at all); the handler remembers
the signal, so that the command still ends as interrupted (exit 130) and writes nothing afterwards."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_seen = threading.Event()


def _handler(signum: int, frame: FrameType | None) -> None:
    _seen.set()
    raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT from Python's default handler (a SIGINT that was ignored when the process started, as in
    a background job, stays ignored)."""
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
