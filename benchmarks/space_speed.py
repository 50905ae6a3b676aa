"""Design-space speed: how many specs archspec validates, plans and counts per second, beside fvcore on the same specs.

Run by hand (a few minutes): python benchmarks/space_speed.py [--jobs 1 2] [--samples 1000] [--fvcore 8]
Prints Markdown tables for docs/performance.md, with the machine and its load average before and after.

1. validate + plan + count, the inner loop of `archspec sample`, on fixed mappings (ResNet-50,
   RegNetX-400MF) and on specs drawn from the RegNetX space (every draw planned and counted), in one
   process and spread over worker processes (wall-clock time of the whole batch);
2. `archspec sample specs/spaces/regnetx.yaml -n N` end to end (files written), for each --jobs;
3. fvcore (build the module, trace one image) against the analytic counter on exactly the same specs:
   ResNet-50, RegNetX-400MF and specs sampled from the RegNetX space in the 400MF regime.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from archspec.counting.analytic import complexity
from archspec.lang.sources import load_document
from archspec.lang.yamldoc import from_mapping
from archspec.plan.load import plan_document
from archspec.space.draw import draw
from archspec.space.load import load_space

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "specs" / "spaces" / "regnetx.yaml"
_BATCH: list[dict[str, Any]] = []


def count_all(mappings: list[dict[str, Any]]) -> int:
    """Validate, plan and count each mapping, as `archspec sample` does with a draw."""
    for data in mappings:
        complexity(plan_document(from_mapping(data)))
    return len(mappings)


def _count_range(bounds: tuple[int, int]) -> int:
    return count_all(_BATCH[bounds[0] : bounds[1]])


def rate(mappings: list[dict[str, Any]], jobs: int, repeats: int = 3) -> float:
    """Specs per second over the whole batch (best of `repeats`), in one process or `jobs` forked workers."""
    global _BATCH
    _BATCH = mappings
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        if jobs == 1:
            count_all(mappings)
        else:
            step = -(-len(mappings) // (jobs * 8))
            runs = [(i, min(len(mappings), i + step)) for i in range(0, len(mappings), step)]
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                pool.map(_count_range, runs)
        best = max(best, len(mappings) / (time.perf_counter() - started))
    return best


def fvcore_seconds(mappings: list[dict[str, Any]]) -> float:
    """The median time fvcore takes per spec: build the module, trace one image (its counts checked equal)."""
    from archspec.nn.fvcore_count import fvcore_complexity

    times = []
    for data in mappings:
        plan = plan_document(from_mapping(data))
        started = time.perf_counter()
        reference = fvcore_complexity(plan)
        times.append(time.perf_counter() - started)
        assert (reference.flops, reference.params) == (complexity(plan).flops, complexity(plan).params)
    return statistics.median(times)


def fvcore_table(space: Any, count: int, repeat: int, jobs: list[int]) -> None:
    """fvcore and the analytic counter on the same specs: two stock specs, and `count` samples of the space."""
    from archspec.nn.fvcore_count import fvcore_complexity
    from archspec.space.sample import sample

    run = sample(space, n=count, seed=1, jobs=1)
    sampled = [draw(space, 1, record.draw).data for record in run.samples]
    fvcore_complexity(plan_document(from_mapping(sampled[0])))  # torch and fvcore load once, outside the timing
    sets = {
        "resnet50": [load_document("resnet50").data] * 3,
        "regnet_x_400mf": [load_document("regnet_x_400mf").data] * 3,
        f"{count} samples of the RegNetX space (400MF)": sampled,
    }
    heads = [f"archspec, {j} process{'es' if j > 1 else ''}: specs/s (ratio)" for j in jobs]
    print("\n| the same specs | fvcore: seconds per spec (median) | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(jobs))
    for label, mappings in sets.items():
        seconds = fvcore_seconds(mappings)
        batch = mappings * max(1, repeat // len(mappings))
        cells = [f"{r:,.0f} ({r * seconds:,.0f}x)" for r in (rate(batch, j) for j in jobs)]
        print(f"| {label} | {seconds:.3f} | " + " | ".join(cells) + " |")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--draws", type=int, default=4000, help="specs drawn from the RegNetX space for table 1")
    parser.add_argument("--repeat", type=int, default=2000, help="copies of each fixed mapping for table 1")
    parser.add_argument("--samples", type=int, default=1000, help="N of the `archspec sample` runs")
    parser.add_argument("--fvcore", type=int, default=8, help="sampled specs that fvcore counts (0: no fvcore)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average {load_before:.1f} before.\n"
    )

    space = load_space(str(SPACE))
    workloads = {
        "resnet50 (16 blocks)": [load_document("resnet50").data] * args.repeat,
        "regnet_x_400mf (22 blocks)": [load_document("regnet_x_400mf").data] * args.repeat,
        f"{args.draws:,} draws of specs/spaces/regnetx.yaml": [draw(space, 0, i).data for i in range(args.draws)],
    }
    print(
        "| specs (validate + plan + count each) | "
        + " | ".join(f"{j} process{'es' if j > 1 else ''}" for j in args.jobs)
        + " |"
    )
    print("|---|" + "---|" * len(args.jobs))
    for label, mappings in workloads.items():
        rates = [rate(mappings, jobs) for jobs in args.jobs]
        print(f"| {label} | " + " | ".join(f"{r:,.0f} specs/s" for r in rates) + " |")

    print("\n| `archspec sample specs/spaces/regnetx.yaml -n N --seed 0` | wall seconds | draws | draws/s |")
    print("|---|---|---|---|")
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            command = [
                sys.executable,
                "-m",
                "archspec",
                "sample",
                str(SPACE),
                "-n",
                str(args.samples),
                "--seed",
                "0",
                "--out",
                folder + "/s",
                "--jobs",
                str(jobs),
            ]
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - started
        drawn = int(result.stderr.split("drew ", 1)[1].split(" ", 1)[0].replace(",", ""))
        print(f"| N = {args.samples:,}, --jobs {jobs} | {seconds:.1f} | {drawn:,} | {drawn / seconds:,.0f} |")

    if args.fvcore:
        fvcore_table(space, args.fvcore, args.repeat, args.jobs)
    print(f"\nLoad average {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
