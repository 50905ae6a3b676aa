"""Progress for long work: a live bar (rich) on a terminal, one plain line per phase on a pipe or a log.

Results go to stdout; progress goes to the stream given here (stderr), so piping a command's
output never carries bars with it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from archspec.errors import printable

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID


class Progress:
    """`note` writes a line; `phase(label, total)` starts counting steps that `step` advances."""

    def __init__(self, stream: TextIO | None = None, prefix: str = "archspec", *, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.prefix = prefix
        self.enabled = enabled
        self.live = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Bar | None = None
        self._task: TaskID | None = None

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        self._stop()
        text = printable(text)  # a path's control characters must not break the line
        self.stream.write(f"{self.prefix}: {text}\n" if self.prefix else f"{text}\n")
        self.stream.flush()

    def phase(self, label: str, total: int, unit: str = "steps") -> None:
        """Start counting `total` of `unit` (what one `step` is: steps, samples, batches)."""
        if not self.enabled:
            return
        self._stop()
        if not self.live:
            self.note(f"{label} ({total:,} {unit}) ...")
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn(f"{self.prefix}: {{task.description}}" if self.prefix else "{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def step(self, advance: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, advance)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None

    def close(self) -> None:
        self._stop()
