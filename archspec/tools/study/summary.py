"""What a study shows: per population the spread of its members' errors, and for each pair of populations the
Kolmogorov-Smirnov distance between their error EDFs, which lies left (the better one), and a bootstrap
interval on the difference of their median errors (Radosavovic et al. 2019, section 3).

Also the complexity-normalised EDF of the 2019 paper: each population's members are weighted so that
their complexity distributions match, so that a space is not favoured for holding bigger models.
"""

from __future__ import annotations

import math
import random
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from archspec.tools.study.records import MemberRecord

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
# Complexity bins for the normalised EDF: equal widths on a log scale over the pooled range.
NORMALIZE_BINS = 10


@dataclass(frozen=True)
class PopulationSummary:
    name: str
    members: int
    ok: int
    failed: int
    min_error: float | None
    median_error: float | None
    max_error: float | None


@dataclass(frozen=True)
class PairSummary:
    """`ks`: the largest vertical gap between the two error EDFs; `left`: the population whose EDF is above the
    other's there (more of its members at low error). `median_difference` is first's median error minus
    second's, with a 95% bootstrap interval."""

    first: str
    second: str
    ks: float
    left: str
    median_difference: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class StudySummary:
    populations: list[PopulationSummary]
    pairs: list[PairSummary]


def errors_by_population(records: Sequence[MemberRecord]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for record in records:
        values = found.setdefault(record.population, [])
        if record.status == "ok" and record.error is not None and math.isfinite(record.error):
            values.append(record.error)
    return found


def edf(values: Sequence[float], x: float) -> float:
    ordered = sorted(values)
    return bisect_right(ordered, x) / len(ordered)


def ks_distance(a: Sequence[float], b: Sequence[float]) -> tuple[float, int]:
    """sup_x |F_a(x) - F_b(x)| over the pooled values, and the sign of F_a - F_b where it is reached."""
    sorted_a, sorted_b = sorted(a), sorted(b)
    best, sign = 0.0, 0
    for x in sorted(set(sorted_a) | set(sorted_b)):
        gap = bisect_right(sorted_a, x) / len(sorted_a) - bisect_right(sorted_b, x) / len(sorted_b)
        if abs(gap) > best + 1e-12:
            best, sign = abs(gap), (1 if gap > 0 else -1)
    return best, sign


def median_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval on median(a) - median(b); seeded, so the same data gives the same one."""
    rng = random.Random(BOOTSTRAP_SEED)
    differences = sorted(
        statistics.median(rng.choices(a, k=len(a))) - statistics.median(rng.choices(b, k=len(b)))
        for _ in range(BOOTSTRAP_SAMPLES)
    )
    low = differences[int(0.025 * BOOTSTRAP_SAMPLES)]
    high = differences[min(BOOTSTRAP_SAMPLES - 1, int(0.975 * BOOTSTRAP_SAMPLES))]
    return low, high


def summarize(records: Sequence[MemberRecord], order: Sequence[str] = ()) -> StudySummary:
    """The summary, populations in `order` (those with records), then any others in the order of their records."""
    present = {record.population for record in records}
    names = list(dict.fromkeys([name for name in order if name in present] + [r.population for r in records]))
    errors = errors_by_population(records)
    populations = []
    for name in names:
        own = [r for r in records if r.population == name]
        values = sorted(errors[name])
        populations.append(
            PopulationSummary(
                name,
                len(own),
                len(values),
                len(own) - len(values),
                values[0] if values else None,
                statistics.median(values) if values else None,
                values[-1] if values else None,
            )
        )
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = errors[first], errors[second]
            if not a or not b:
                continue
            ks, sign = ks_distance(a, b)
            difference = statistics.median(a) - statistics.median(b)
            left = first if sign > 0 or (sign == 0 and difference <= 0) else second
            pairs.append(PairSummary(first, second, ks, left, difference, median_interval(a, b)))
    return StudySummary(populations, pairs)


def _binned(records: Sequence[MemberRecord], quantity: str) -> list[tuple[MemberRecord, int]]:
    """The members that trained, each with its complexity bin: the pooled range of `quantity` (flops or params)
    over them cut into `NORMALIZE_BINS` equal bins on a log scale."""
    ok = [r for r in records if r.status == "ok" and r.error is not None]
    values = [math.log(max(1, getattr(r, quantity))) for r in ok]
    if not values:
        return []
    low, high = min(values), max(values)
    width = (high - low) / NORMALIZE_BINS or 1.0
    return [(r, min(NORMALIZE_BINS - 1, int((v - low) / width))) for r, v in zip(ok, values, strict=True)]


def complexity_bins(records: Sequence[MemberRecord], quantity: str) -> dict[str, dict[int, int]]:
    """Per population with a member that trained, how many of those members fall in each complexity bin."""
    return _bin_counts(_binned(records, quantity))


def _bin_counts(binned: list[tuple[MemberRecord, int]]) -> dict[str, dict[int, int]]:
    counts: dict[str, dict[int, int]] = {}
    for record, b in binned:
        bins = counts.setdefault(record.population, {})
        bins[b] = bins.get(b, 0) + 1
    return counts


def complexity_weights(records: Sequence[MemberRecord], quantity: str) -> dict[tuple[str, str], float]:
    """Weights that give every population the same complexity distribution (the 2019 paper's normalisation).

    The pooled range of `quantity` (flops or params) is cut into equal bins on a log scale; in each
    population a member weighs 1 / (its bin's members), so that each population spreads evenly over the
    bins, and bins that some population has no member in weigh nothing. Weights sum to 1 per population.
    """
    binned = _binned(records, quantity)
    if not binned:
        return {}
    counts = _bin_counts(binned)
    shared = set.intersection(*(set(bins) for bins in counts.values()))
    weights: dict[tuple[str, str], float] = {}
    for record, b in binned:
        weights[(record.population, record.name)] = 1.0 / counts[record.population][b] if b in shared else 0.0
    for population in counts:
        total = sum(w for (p, _), w in weights.items() if p == population)
        for key in [key for key in weights if key[0] == population]:
            weights[key] = weights[key] / total if total else 0.0
    return weights


def normalization_problem(records: Sequence[MemberRecord], quantity: str) -> str | None:
    """Why the populations of `records` cannot be weighted to one `quantity` distribution, naming the population
    (or the pair) at fault; None when they can."""
    names = list(dict.fromkeys(r.population for r in records))
    counts = complexity_bins(records, quantity)
    for name in names:
        if name not in counts:
            members = sum(r.population == name for r in records)
            return (
                f"{name} has no member with an error ({members} failed): there is nothing to weigh against the other "
                "populations"
            )
    bins = {name: set(counts[name]) for name in names}
    if set.intersection(*bins.values()):
        return None

    def spread(name: str) -> str:
        values = [getattr(r, quantity) for r in records if r.population == name and r.status == "ok"]
        return f"{name} ({min(values):.3g} to {max(values):.3g})"

    for name in names:
        others = set().union(*(bins[other] for other in names if other != name))
        if not bins[name] & others:
            rest = ", ".join(spread(other) for other in names if other != name)
            return (
                f"{spread(name)} shares no range of {quantity} with the other populations ({rest}): there is "
                "nothing to weigh its members against"
            )
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if not bins[first] & bins[second]:
                return (
                    f"{spread(first)} and {spread(second)} share no range of {quantity}: no weighting can give "
                    "them one distribution"
                )
    listed = ", ".join(spread(name) for name in names)
    return (
        f"no range of {quantity} is common to all the populations ({listed}): no weighting can give them one "
        "distribution"
    )
