"""Sampling a space: draw, validate, plan and count; keep the distinct valid draws inside the constraints.

Draws are taken in index order and kept until `n` are accepted, so the result depends on the seed
alone. With several jobs, worker processes evaluate runs of consecutive draws (each draw seeds its
own generator) and the results are read back in index order: the same files for any number of jobs.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from typing import Any

from archspec.counting.analytic import totals
from archspec.errors import Mark, Problem, SpecError, format_path
from archspec.lang.validate import validate
from archspec.lang.yamldoc import from_mapping
from archspec.plan.generators import expand_stages
from archspec.plan.load import plan_document
from archspec.plan.walker import PlanError
from archspec.space.constraints import QUANTITIES, format_quantity
from archspec.space.draw import SEED_SPAN, distinct_specs, draw
from archspec.space.results import InvalidDraws, SampleRecord, SampleRun, SampleStats
from archspec.space.template import Space
from archspec.space.write import renamed, render_spec
from archspec.tools.progress import Progress

# ("ok", params, flops, macs, activations, depth, stages), ("refused", stages), ("invalid", field, message)
# or ("error", problems).
Outcome = tuple[Any, ...]
# Draws per task sent to a worker, and tasks per worker in a round.
_CHUNK = 128
_RUNS_PER_JOB = 4
# Below this many samples the workers would take longer to start than the draws to evaluate.
_PARALLEL_FROM = 100
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_max_draws(n: int) -> int:
    """Enough draws for an acceptance rate of 0.1% (RegNetX at 400MF keeps about 0.6%)."""
    return 1000 * n + 100_000


def name_prefix(space: Space) -> str:
    """The space's name as a safe file name (`sample` if nothing of it is)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", space.name).strip("._-")[:80]
    return cleaned or "sample"


def evaluate(data: dict[str, Any], stages: tuple[float, float] | None = None) -> Outcome:
    """Validate, plan and count one drawn spec, as a file with this content would be.

    With `stages` bounds, the number of stages is checked as soon as a generator has expanded them,
    and a draw outside them is refused without being planned: ("refused", number of stages).
    """
    doc = from_mapping(data, source="<draw>")
    try:
        spec = None
        if stages is not None:
            spec = validate(doc)
            count = len(expand_stages(spec.stages))
            if not stages[0] <= count <= stages[1]:
                return ("refused", count)
        plan = plan_document(doc, spec)
    except SpecError as exc:
        first = exc.problems[0]
        return ("invalid", first.path, first.message)
    except PlanError as exc:  # a generator's numbers that make no network, found before planning
        problem = exc.problems[0]
        return ("invalid", format_path(problem.path), problem.message)
    return ("ok", *totals(plan), len(plan.stages))


@dataclass(frozen=True)
class _Draws:
    """What evaluating a draw needs: the space, the seed, and, when the specs are rendered where they are
    evaluated, the constraints' bounds and the name each spec is rendered with (its place in the sample is
    known only in the main process, which puts the real name in)."""

    space: Space
    seed: int
    bounds: list[tuple[str, tuple[float, float]]]
    placeholder: str | None = None

    def evaluate(self, index: int) -> tuple[dict[str, Any], Outcome, str | None]:
        """The drawn values, the outcome and, for a valid draw inside the bounds, its spec text."""
        try:
            d = draw(self.space, self.seed, index)
        except SpecError as exc:  # a fault of the space itself, reported by the main process
            return {}, ("error", exc.problems), None
        outcome = evaluate(d.data, self.space.constraints.stages)
        if self.placeholder is None or outcome[0] != "ok":
            return d.fields, outcome, None
        measured = dict(zip(QUANTITIES, outcome[1:], strict=True))
        if not all(lo <= measured[name] <= hi for name, (lo, hi) in self.bounds):
            return d.fields, outcome, None
        return d.fields, outcome, render_spec(self.space, self.seed, index, self.placeholder, d.data)


_WORKER: dict[str, _Draws] = {}


def _start_worker(draws: _Draws) -> None:
    # The main process answers Ctrl-C and SIGTERM and then stops the workers: a worker just ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER["draws"] = draws


def _evaluate_run(bounds: tuple[int, int]) -> list[tuple[dict[str, Any], Outcome, str | None]]:
    draws = _WORKER["draws"]
    return [draws.evaluate(index) for index in range(*bounds)]


@contextmanager
def _workers(draws: _Draws, jobs: int) -> Iterator[Pool | None]:
    """A pool of `jobs` forked workers that know the space and the seed, or None for one process (also where
    there is no fork, as on Windows). Forked before any progress bar starts its thread; stopped on the way out,
    with whatever they were still evaluating."""
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    # Forked workers inherit the space; nothing of it is pickled.
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_start_worker, initargs=(draws,)) as pool:
        yield pool


def _outcomes(
    draws: _Draws, limit: int, pool: Pool | None, jobs: int
) -> Iterator[tuple[int, dict[str, Any], Outcome, str | None]]:
    """(index, fields, outcome, text) of draws 0, 1, 2, ... up to `limit`, in order (from `jobs` workers in
    `pool`)."""
    if pool is None:
        for index in range(limit):
            yield (index, *draws.evaluate(index))
        return
    # The next round of runs is queued before this one is read, so the workers never wait for the reader.
    size = _CHUNK * _RUNS_PER_JOB * jobs
    rounds = (
        [(start, min(limit, start + _CHUNK)) for start in range(end - size, end, _CHUNK) if start < limit]
        for end in range(size, limit + size, size)
    )
    queued = [(runs, pool.imap(_evaluate_run, runs)) for runs in itertools.islice(rounds, 2)]
    while queued:
        runs, results = queued.pop(0)
        queued += [(more, pool.imap(_evaluate_run, more)) for more in itertools.islice(rounds, 1)]
        for (first, _), outcomes in zip(runs, results, strict=True):
            for offset, (fields, outcome, text) in enumerate(outcomes):
                yield first + offset, fields, outcome, text


@dataclass
class _Tally:
    """Running statistics of one sampling run."""

    drawn: int = 0
    duplicates: int = 0
    invalid: int = 0
    refused: int = 0
    refused_by: dict[str, int] = field(default_factory=dict)
    invalid_by: dict[str, list[Any]] = field(default_factory=dict)  # field -> [count, message, first index]
    observed: dict[str, list[int]] = field(default_factory=dict)  # quantity -> [least, most] of the valid draws
    seen: set[str] = field(default_factory=set)  # the drawn values of every draw so far
    streak: int = 0  # repeats in a row, up to the last draw
    stopped: str = ""  # why sampling stopped before its last draw

    def take(
        self, index: int, fields: dict[str, Any], outcome: Outcome, bounds: list[tuple[str, tuple[float, float]]]
    ) -> dict[str, int] | None:
        """Count one draw; return what it measures when it is new, valid and inside every bound."""
        self.drawn += 1
        key = repr(list(fields.items()))
        if key in self.seen:
            self.duplicates += 1
            self.streak += 1
            return None
        self.streak = 0
        self.seen.add(key)
        if outcome[0] == "error":
            raise SpecError(outcome[1])
        if outcome[0] == "invalid":
            self.invalid += 1
            self.invalid_by.setdefault(outcome[1], [0, outcome[2], index])[0] += 1
            return None
        if outcome[0] == "refused":  # outside `stages`, found before planning
            self.refused += 1
            self.refused_by["stages"] += 1
            self.observe("stages", outcome[1])
            return None
        measured = dict(zip(QUANTITIES, outcome[1:], strict=True))
        outside = [name for name, (lo, hi) in bounds if not lo <= measured[name] <= hi]
        for name, _ in bounds:
            self.observe(name, measured[name])
        for name in outside:
            self.refused_by[name] += 1
        if outside:
            self.refused += 1
            return None
        return measured

    def observe(self, name: str, value: int) -> None:
        least_most = self.observed.setdefault(name, [value, value])
        least_most[0], least_most[1] = min(least_most[0], value), max(least_most[1], value)

    def stats(self, accepted: int) -> SampleStats:
        invalid = [InvalidDraws(name, count, message) for name, (count, message, _) in self.invalid_by.items()]
        invalid.sort(key=lambda item: -item.count)
        return SampleStats(
            self.drawn, accepted, self.duplicates, self.invalid, self.refused, dict(self.refused_by), invalid
        )


def sample(
    space: Space,
    *,
    n: int,
    seed: int = 0,
    jobs: int = 1,
    max_draws: int | None = None,
    prefix: str | None = None,
    progress: Progress | None = None,
    keep: Callable[[SampleRecord, str | None], None] | None = None,
) -> SampleRun:
    """`n` distinct valid specs of `space` inside its constraints; a located SpecError if the draws run out first.

    With `keep`, each sample's spec text (`write.spec_text`) is made where its draw is evaluated (in the
    workers, with several jobs), and `keep(record, text)` is called as the sample is kept, while the draws go
    on (`text` is None where the text was not made there: `keep` makes it).
    """
    if not 0 <= seed < SEED_SPAN:
        raise SpecError(Problem(Mark(f"--seed {seed}"), "seed", f"expected a seed from 0 to {SEED_SPAN - 1}"), code=2)
    limit = max_draws if max_draws is not None else default_max_draws(n)
    size = distinct_specs(space)
    if size is not None and size < n:
        what = "draws nothing, it is one spec" if size == 1 else f"holds {size:,} distinct specs at most"
        raise SpecError(
            Problem(Mark(space.source, 1, 1), "", f"cannot give {n:,} distinct samples: the space {what}"), code=1
        )
    prefix = prefix or name_prefix(space)
    digits = max(4, len(str(n)))
    bounds = list(space.constraints.bounds().items())
    tally = _Tally(refused_by={name: 0 for name, _ in bounds})
    records: list[SampleRecord] = []
    jobs = jobs if n >= _PARALLEL_FROM else 1
    placeholder = f"{prefix}-{0:0{digits}d}" if keep is not None else None
    draws = _Draws(space, seed, bounds, placeholder)
    with _workers(draws, jobs) as pool:
        if progress is not None:
            progress.phase(f"sampling {space.name}", n, "samples")  # a step is a sample kept, not a draw
        try:
            for index, fields, outcome, text in _outcomes(draws, limit, pool, jobs):
                measured = tally.take(index, fields, outcome, bounds)
                if measured is None:
                    tally.stopped = _hopeless(tally, len(records), size, guess=max_draws is None)
                    if tally.stopped:
                        break
                    continue
                name = f"{prefix}-{len(records) + 1:0{digits}d}"
                records.append(SampleRecord(name, f"{name}.yaml", index, fields, **measured))
                if keep is not None and placeholder is not None:
                    keep(records[-1], None if text is None else renamed(text, placeholder, name))
                if progress is not None:
                    progress.step()
                if len(records) == n:
                    break
        finally:
            if progress is not None:
                progress.close()
    if len(records) < n:
        raise _exhausted(space, seed, n, len(records), tally)
    constraints = {name: [int(v) if v.is_integer() else v for v in bound] for name, bound in bounds}
    return SampleRun(space.source, space.name, seed, n, constraints, records, tally.stats(len(records)))


# Sampling stops early, and says why, after this many repeats in a row, or when the first this many draws
# (with the default --max-draws) gave no sample: the default assumes that at least 1 draw in 1,000 is kept.
HOPELESS_DRAWS = 10_000


def _hopeless(tally: _Tally, accepted: int, size: int | None, *, guess: bool) -> str:
    """Why no more samples can be expected, or "" to go on drawing."""
    if size is not None and len(tally.seen) >= size:
        return f"after all {size:,} distinct specs of the space were drawn"
    if tally.streak >= HOPELESS_DRAWS:
        return f"after {HOPELESS_DRAWS:,} repeats in a row"
    if guess and accepted == 0 and tally.drawn >= HOPELESS_DRAWS:
        return f"stopped as the first {HOPELESS_DRAWS:,} draws kept none (--max-draws M draws up to M)"
    return ""


# `archspec validate` draws up to this many specs from a space: one valid is enough, none is an error.
CHECKED_DRAWS = 200


def check_draws(space: Space, draws: int = CHECKED_DRAWS) -> None:
    """Refuse a space none of whose first `draws` draws (seed 0) is a valid spec: raise the located problem of
    the commonest invalid one. The constraints are not applied (how many draws they keep is `sample`'s to say);
    the first valid draw ends the check."""
    invalid: dict[str, list[int]] = {}  # field -> [count, first index]
    for index in range(draws):
        outcome = evaluate(draw(space, 0, index).data)
        if outcome[0] == "ok":
            return
        invalid.setdefault(outcome[1], [0, index])[0] += 1
    index = max(invalid.values(), key=lambda item: item[0])[1]
    error = _invalid_draw(space, 0, index, f"none of the space's first {draws:,} draws is a valid spec")
    if error is not None:
        raise error


def _invalid_draw(space: Space, seed: int, index: int, note: str) -> SpecError | None:
    """The problem of invalid draw `index`, located in the space file, its message followed by `(note)`."""
    try:
        plan_document(draw(space, seed, index).located(space))
    except SpecError as exc:
        first = exc.problems[0]
        return SpecError(Problem(first.mark, first.path, f"{first.message} ({note})", first.via))
    return None


def _exhausted(space: Space, seed: int, n: int, accepted: int, tally: _Tally) -> SpecError:
    """Why the draws ran out, at the place in the space file most to blame."""
    got = f"only {accepted:,} of {n:,} samples in {tally.drawn:,} draws"
    if tally.stopped:
        got += f", {tally.stopped}"
    distinct = len(tally.seen)
    valid = distinct - tally.invalid
    if valid == 0 and tally.invalid_by:
        index = max(tally.invalid_by.values(), key=lambda item: item[0])[2]  # the first draw of the commonest
        error = _invalid_draw(space, seed, index, f"{got}: every one is invalid")
        if error is not None:
            return error
    if tally.refused:
        name = max(tally.refused_by, key=lambda key: tally.refused_by[key])
        lo, hi = space.constraints.bounds()[name]
        least, most = (format_quantity(v) for v in tally.observed[name])
        bound = f"[{format_quantity(lo)}, {format_quantity(hi)}]"
        message = (
            f"{got}: {tally.refused_by[name]:,} outside {name} {bound}, where the valid draws had {least} to {most}; "
            "widen the constraint or the distributions, or allow more --max-draws"
        )
        return SpecError(
            Problem(space.doc.mark_for(("constraints", name)), format_path(("constraints", name)), message)
        )
    invalid = f", {tally.invalid:,} of them invalid" if tally.invalid else ""
    message = (
        f"{got}: the space holds {distinct:,} distinct specs in those draws{invalid} ({tally.duplicates:,} repeats)"
    )
    return SpecError(Problem(Mark(space.source, 1, 1), "", message))
