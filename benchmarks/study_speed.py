"""Speed of `archspec study`: members per minute with 1 and 2 workers, and the share of wall time spent outside
training, split into a part paid once per study and a part paid per member.

    python benchmarks/study_speed.py                    # 16 members of about 5 s each, 1 and 2 workers
    python benchmarks/study_speed.py --members 16 --epochs 12 --workers 1 2

Every member is the same small CIFAR-style spec on the 8x8 digits, so members cost alike; `--epochs`
sets how long each trains (12: about 5 s on one thread of a quiet 2-core machine). Each study runs in
its own process, as `archspec study` does, from the command's start to its exit.

- training per member: the member's epoch times (metrics.jsonl), the held-out check included;
- around each member: the member's time in its worker (its record's `seconds`) less its training, the
  median over the members but the first of each worker (planning the spec, building the model, writing
  its curves, state and checkpoint once);
- warm-up per worker: what the first member of each worker costs beyond that (importing torch's optimizer
  machinery, loading the data): the mean of the `workers` largest, less the median;
- fixed: the wall time not explained by the members, `wall - members / workers x (training + around)`:
  Python's start, planning the specs, Ray's start and shutdown, the workers' start and warm-up, scheduling;
- overhead = 1 - training / (workers x wall), the share of the worker-seconds not spent training.

With these, a study of M members on W workers takes about `fixed + M / W x (training + around)`, so its
overhead falls under 10% from `M = 0.9 x fixed x W / (0.1 x training - 0.9 x around)` members on; the last
column gives that count for the measured training time and for 5 s members. Prints Markdown tables for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
name: {name}
input: {{channels: 1, size: 8}}
stem: {{type: cifar, width: 16}}
block: basic
shortcut: B
stages:
  - {{depth: 2, width: 16}}
  - {{depth: 2, width: 24}}
  - {{depth: 2, width: 32}}
head: {{num_classes: 10}}
"""


def run(folder: Path, members: int, epochs: int, workers: int) -> dict[str, float]:
    population = folder / f"members{workers}"
    population.mkdir()
    for index in range(members):
        (population / f"m{index:03d}.yaml").write_text(SPEC.format(name=f"m{index:03d}"))
    out = folder / f"study{workers}"
    command = [sys.executable, "-m", "archspec", "study", str(population), "--out", str(out)]
    command += ["--epochs", str(epochs), "--workers", str(workers), "--format", "json"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    trained, around = [], []
    for line in (out / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        metrics = out / "members" / record["population"] / record["name"] / "metrics.jsonl"
        seconds = sum(json.loads(row)["seconds"] for row in metrics.read_text().splitlines())
        trained.append(seconds)
        around.append(record["seconds"] - seconds)
    training = statistics.fmean(trained)
    # Each worker's first member carries the worker's warm-up: the `workers` largest are taken for those.
    around.sort()
    steady, first = around[:-workers] or around, around[-workers:]
    per_member = statistics.median(steady)
    return {
        "wall": wall,
        "per_minute": members / wall * 60,
        "member_seconds": training,
        "member_overhead": per_member,
        "warm_up": statistics.fmean(first) - per_member,
        "fixed": wall - members / workers * (training + per_member),
        "overhead": 1 - sum(trained) / (workers * wall),
    }


def members_for_10_percent(fixed: float, training: float, around: float, workers: int) -> float:
    """The members from which the overhead of a study on `workers` falls under 10% (inf: it never does)."""
    spare = 0.1 * training - 0.9 * around
    return math.ceil(0.9 * fixed * workers / spare) if spare > 0 else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12, help="epochs per member (12: about 5 s on one thread)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} before")
    print(
        "\n| workers | members | wall (s) | members/min | training per member (s) | around each member (s) "
        "| warm-up per worker (s) | fixed (s) | overhead | speed-up | members for overhead < 10% (measured; 5 s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            result = run(Path(tmp), args.members, args.epochs, workers)
            first = first or result["per_minute"]
            fixed, around = result["fixed"], result["member_overhead"]
            needed = members_for_10_percent(fixed, result["member_seconds"], around, workers)
            needed_5s = members_for_10_percent(fixed, 5.0, around, workers)
            print(
                f"| {workers} | {args.members} | {result['wall']:.1f} | {result['per_minute']:.2f} | "
                f"{result['member_seconds']:.2f} | {around:.3f} | {result['warm_up']:.2f} | {fixed:.1f} | "
                f"{100 * result['overhead']:.1f}% | {result['per_minute'] / first:.2f}x | {needed}; {needed_5s} |",
                flush=True,
            )
    print(f"\nLoad {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
