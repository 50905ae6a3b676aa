"""Speed of `archspec study`: members per minute with 1 and 2 workers, and the share of wall time spent outside
training (Ray's start and shutdown, scheduling, loading the data in each worker, writing the records).

    python benchmarks/study_speed.py                    # 16 members of about 5 s each, 1 and 2 workers
    python benchmarks/study_speed.py --members 16 --epochs 4 --workers 1 2

Every member is the same small CIFAR-style spec on the 8x8 digits, so members cost alike; `--epochs`
sets how long each trains. Each study runs in its own process, as `archspec study` does, from the
command's start to its exit. Training time is the sum of the members' epoch times (metrics.jsonl);
overhead = 1 - training / (workers x wall). Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
    training = 0.0
    for metrics in (out / "members").rglob("metrics.jsonl"):
        training += sum(json.loads(line)["seconds"] for line in metrics.read_text().splitlines())
    in_worker = sum(json.loads(line)["seconds"] for line in (out / "results.jsonl").read_text().splitlines())
    return {
        "wall": wall,
        "per_minute": members / wall * 60,
        "member_seconds": training / members,
        # Around each member in its worker: building the model, saving its state and checkpoint each epoch.
        "member_overhead": (in_worker - training) / members,
        # Outside the members: starting Python, planning the specs, Ray's start and shutdown, idle workers.
        "outside": wall - in_worker / workers,
        "overhead": 1 - training / (workers * wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per member (6: about 5 s on one thread)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(
        "\n| workers | members | wall (s) | members/min | training per member (s) | around each member (s) "
        "| outside the members (s) | overhead | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            result = run(Path(tmp), args.members, args.epochs, workers)
            first = first or result["per_minute"]
            print(
                f"| {workers} | {args.members} | {result['wall']:.1f} | {result['per_minute']:.2f} | "
                f"{result['member_seconds']:.2f} | {result['member_overhead']:.2f} | {result['outside']:.1f} | "
                f"{100 * result['overhead']:.1f}% | "
                f"{result['per_minute'] / first:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
