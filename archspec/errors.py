"""archspec's one error type: a list of problems, each pointing at a place in a spec."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mark:
    """Where a value came from: a file (or `--set ...`, or `<mapping>`), line and column (1-based)."""

    source: str
    line: int | None = None
    column: int | None = None
    # The `extends` lines that pulled this value's file into the spec being loaded, nearest first.
    via: tuple[Mark, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        if self.line is None:
            return self.source
        if self.column is None:
            return f"{self.source}:{self.line}"
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One mistake: where it is, which field, and a sentence saying what is wrong."""

    mark: Mark
    path: str
    message: str
    via: tuple[Mark, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        text = f"{self.mark}: {self.path or '(document)'}: {self.message}"
        chain = self.mark.via + self.via
        if chain:
            # The files that pulled this one in through `extends`, nearest first (a long chain: its two ends).
            shown = [f"{m.source}:{m.line or 1}" for m in chain]
            if len(shown) > 4:
                shown = [*shown[:2], f"... {len(shown) - 3} more", shown[-1]]
            text += " (extended by " + " <- ".join(shown) + ")"
        return printable(text)


class SpecError(Exception):
    """Raised for anything a user can get wrong; carries one or more located problems.

    `code` is the exit status the command line gives it: 1, or 2 for a mistake in how a command
    was called (a usage error).
    """

    def __init__(self, problems: list[Problem] | Problem, code: int = 1):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.code = code
        super().__init__("\n".join(str(p) for p in self.problems))

    def via(self, mark: Mark) -> SpecError:
        """The same problems, seen through a child spec that extends the failing one."""
        return SpecError([Problem(p.mark, p.path, p.message, (*p.via, mark)) for p in self.problems], self.code)


def printable(text: str) -> str:
    """`text` with control characters and line breaks escaped, so one problem stays one line."""
    if all(ch.isprintable() or ch == " " for ch in text):
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def shorten(text: str, limit: int = 60) -> str:
    """`text` on one line and at most `limit` characters, so a message never echoes a whole document."""
    flat = printable(str(text))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def format_path(path: tuple[str | int, ...]) -> str:
    """`("stages", 2, "depth")` -> `stages.2.depth`, the form users write in `--set`."""
    return ".".join(str(part) for part in path)
