"""`archspec sample` end to end: accepted specs per second with 1 and 2 jobs, files written.

Run by hand (about a minute on a quiet 2-core machine):

    python benchmarks/sample_speed.py [--jobs 1 2] [--samples 5000] [--rounds 2] [--space FILE]

Each round runs `archspec sample SPACE -n N --seed 0 --out DIR --jobs J` in a fresh interpreter for every J,
taking turns, so that load arriving on a shared machine falls on each J alike; the rate is N divided by
the wall time of the whole command (interpreter start, drawing, checking, writing the N spec files,
samples.csv and samples.json). The space is benchmarks/resnet50_space.yaml unless --space says otherwise:
ResNet-50-sized bottleneck networks with a FLOPs constraint. The files of every run are checked to be the
same for every J. Then, in this process, the cost of rendering one spec file with PyYAML's pure-Python
emitter and with libyaml's (the one `archspec sample` uses where PyYAML has it; both give the same text).
Prints Markdown tables for docs/performance.md, with the load average before and after.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archspec.space.draw import draw
from archspec.space.load import load_space
from archspec.space.sample import sample
from archspec.space.write import PlainDumper, render_spec

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "benchmarks" / "resnet50_space.yaml"


def run_sample(space: Path, n: int, jobs: int, out: Path) -> tuple[float, str]:
    """Wall seconds of one `archspec sample` command, and its statistics line."""
    command = [sys.executable, "-m", "archspec", "sample", str(space), "-n", str(n), "--seed", "0"]
    command += ["--out", str(out), "--jobs", str(jobs)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    drew = next(line for line in result.stderr.splitlines() if "drew " in line)
    return seconds, drew.removeprefix("archspec: ")


def same_files(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def emitter_costs(space_file: Path, count: int) -> dict[str, float]:
    """Milliseconds per spec file rendered by each emitter, on the first `count` samples of the space."""
    space = load_space(str(space_file))
    run = sample(space, n=count, seed=0, jobs=1)
    drawn = [(record, draw(space, 0, record.draw).data) for record in run.samples]
    costs, texts = {}, []
    for label, dumper in (("PyYAML, pure Python", PlainDumper), ("libyaml (C)", None)):
        started = time.perf_counter()
        texts.append([render_spec(space, 0, record.draw, record.name, data, dumper=dumper) for record, data in drawn])
        costs[label] = (time.perf_counter() - started) / count * 1000
    assert texts[0] == texts[1], "the two emitters wrote different text"
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samples", type=int, default=5000, help="N of each `archspec sample` run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each --jobs, taking turns")
    parser.add_argument("--space", type=Path, default=SPACE)
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}; ", end="")
    print(f"load average {os.getloadavg()[0]:.1f} before.\n")

    times: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
    drew = ""
    with tempfile.TemporaryDirectory() as folder:
        outs = {}
        for round_ in range(args.rounds):
            for jobs in args.jobs:
                out = Path(folder) / f"j{jobs}-r{round_}"
                seconds, drew = run_sample(args.space, args.samples, jobs, out)
                times[jobs].append(seconds)
                outs.setdefault(jobs, out)
        reference = outs[args.jobs[0]]
        identical = all(same_files(reference, out) for out in outs.values())
    print(f"`archspec sample {args.space.name} -n {args.samples:,} --seed 0` ({drew}); files identical for every")
    print(f"--jobs: {'yes' if identical else 'NO'}\n")
    print("| --jobs | wall seconds (each round) | accepted specs/s (median) |")
    print("|---|---|---|")
    for jobs, seconds in times.items():
        cells = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"| {jobs} | {cells} | {args.samples / statistics.median(seconds):,.0f} |")

    costs = emitter_costs(args.space, 500)
    print("\n| one spec file rendered by | ms per spec |")
    print("|---|---|")
    for label, ms in costs.items():
        print(f"| {label} | {ms:.3f} |")
    print(f"\nLoad average {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
