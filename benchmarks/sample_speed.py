"""`archspec sample` end to end: accepted specs per second with 1 and 2 jobs, files written.

Run by hand (about a minute on a quiet 2-core machine):

    python benchmarks/sample_speed.py [--jobs 1 2] [--samples 5000] [--rounds 2] [--space FILE] [--reference DIR]
                                      [--tmp DIR]

Each round runs `archspec sample SPACE -n N --seed 0 --out DIR --jobs J` in a fresh interpreter for every J,
taking turns, so that load arriving on a shared machine falls on each J alike; the rate is N divided by
the wall time of the whole command (interpreter start, drawing, checking, writing the N spec files,
samples.csv and samples.json). The space is benchmarks/resnet50_space.yaml unless --space says otherwise:
ResNet-50-sized bottleneck networks with a FLOPs constraint. The files of every run are checked to be the
same for every J. Then, in this process, the cost of rendering one spec file with PyYAML's pure-Python
emitter, with libyaml's, and written directly (`archspec.space.emit`, what `archspec sample` uses for a spec's
usual shapes; all three give the same text),
and where one accepted spec's time goes: each draw's steps (drawn, validated, planned, counted, rendered:
what the workers do) and the main process's part (samples.json, samples.csv, writing and flushing the
files), with the start of an interpreter that imports what the command imports.
Prints Markdown tables for docs/performance.md, with the load average before and after, and the file system's
cost of creating one small file where the runs write (--tmp, default the temporary folder), before and after:
a sample of 5,000 creates 5,000 files, and on a busy or fragmented file system that cost alone can be several
times the rest.
"""

from __future__ import annotations

import argparse
import filecmp
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from archspec.counting.analytic import totals
from archspec.files import write_folder
from archspec.lang.validate import validate
from archspec.lang.yamldoc import from_mapping
from archspec.plan.load import plan_document
from archspec.report.render import to_json
from archspec.space.draw import draw
from archspec.space.load import load_space
from archspec.space.sample import _Draws, sample
from archspec.space.write import PlainDumper, choose_dumper, render_spec, samples_csv

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "benchmarks" / "resnet50_space.yaml"


def run_sample(space: Path, n: int, jobs: int, out: Path) -> tuple[float, str]:
    """Wall seconds of one `archspec sample` command, and its statistics line. The command runs in the project's
    folder with the space's path relative to it where it can be, as in the docs: the path is in every spec's
    description, so a folder written by `archspec sample benchmarks/resnet50_space.yaml ...` compares equal."""
    shown = os.path.relpath(space.resolve(), ROOT) if space.resolve().is_relative_to(ROOT) else str(space.resolve())
    command = [sys.executable, "-m", "archspec", "sample", shown, "-n", str(n), "--seed", "0"]
    command += ["--out", str(out.resolve()), "--jobs", str(jobs)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
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
    emitters = (
        ("PyYAML, pure Python", PlainDumper),
        ("libyaml (C), nodes made by archspec", choose_dumper(getattr(yaml, "__with_libyaml__", False))),
        ("written directly (archspec.space.emit), as `archspec sample` does", None),
    )
    for label, dumper in emitters:
        started = time.perf_counter()
        texts.append([render_spec(space, 0, record.draw, record.name, data, dumper=dumper) for record, data in drawn])
        costs[label] = (time.perf_counter() - started) / count * 1000
    assert all(text == texts[0] for text in texts), "the emitters wrote different text"
    return costs


def file_cost(folder: Path, count: int = 5000) -> float:
    """Milliseconds to create one small file (600 bytes) in a new folder inside `folder`, over `count` files: the
    file system's part of a sample, which varies with its state (on the development machine, from 0.02 ms to
    0.5 ms a file in the same folder, after many files were deleted nearby)."""
    with tempfile.TemporaryDirectory(dir=folder) as inside:
        started = time.perf_counter()
        for index in range(count):
            with open(os.path.join(inside, f"f-{index:05d}.yaml"), "wb") as handle:
                handle.write(b"x" * 600)
        return (time.perf_counter() - started) / count * 1000


def phase_costs(space_file: Path, count: int, folder: Path | None) -> tuple[dict[str, float], dict[str, float]]:
    """Where one accepted spec's time goes, in one process, in milliseconds: in the workers (each draw's
    steps, per draw; a spec takes drawn / accepted draws) and in the main process (per accepted spec).
    Each phase is timed on its own over the first `count` samples, the best of three rounds."""
    space = load_space(str(space_file))
    bounds = list(space.constraints.bounds().items())
    rendered: dict[str, str] = {}
    run = sample(space, n=count, seed=0, jobs=1, keep=lambda record, text: rendered.__setitem__(record.file, text))
    indices = range(run.statistics.drawn)
    draws = [draw(space, 0, index) for index in indices]
    docs = [from_mapping(d.data, source="<draw>") for d in draws]
    specs = [validate(doc) for doc in docs]
    plans = [plan_document(doc, spec) for doc, spec in zip(docs, specs, strict=True)]
    names = {record.draw: record.name for record in run.samples}
    steps: dict[str, Callable[[], object]] = {
        "draw": lambda: [draw(space, 0, index) for index in indices],
        "validate": lambda: [validate(from_mapping(d.data, source="<draw>")) for d in draws],
        "plan": lambda: [plan_document(doc, spec) for doc, spec in zip(docs, specs, strict=True)],
        "count (totals, as sampling counts)": lambda: [totals(plan) for plan in plans],
        "render (accepted draws only)": lambda: [
            render_spec(space, 0, i, names[i], draws[i].data) for i in indices if i in names
        ],
        "the whole evaluation, as a worker runs it": lambda: [
            _Draws(space, 0, bounds, "x-0001").evaluate(index) for index in indices
        ],
    }
    tail: dict[str, Callable[[], object]] = {
        "samples.json": lambda: to_json(run),
        "samples.csv": lambda: samples_csv(run),
    }
    worker = {label: _best(step) / len(indices) * 1000 for label, step in steps.items()}
    main = {label: _best(step) / count * 1000 for label, step in tail.items()}
    with tempfile.TemporaryDirectory(dir=folder) as inside:
        files = [(name, text.encode()) for name, text in rendered.items()]
        started = time.perf_counter()
        write_folder(Path(inside) / "out", files, force=False)
        main["the spec files, written and flushed"] = (time.perf_counter() - started) / count * 1000
    return worker, main


def _best(step: Callable[[], object], rounds: int = 3) -> float:
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best


def start_seconds() -> float:
    """An interpreter's start with what `archspec sample` imports, the best of three."""
    command = [sys.executable, "-c", "import archspec.cli.application, archspec.space.sample, archspec.space.write"]
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samples", type=int, default=5000, help="N of each `archspec sample` run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each --jobs, taking turns")
    parser.add_argument("--space", type=Path, default=SPACE)
    parser.add_argument(
        "--reference", type=Path, help="a folder written earlier by the same command (-n, --seed 0) to compare with"
    )
    parser.add_argument("--tmp", type=Path, help="where the runs write their folders (default: the temporary folder)")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}; ", end="")
    print(f"load average {os.getloadavg()[0]:.1f} before.\n")

    print(f"Creating a small file where the runs write: {file_cost(args.tmp):.3f} ms (before).\n")
    times: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
    drew = ""
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        outs: dict[int, Path] = {}
        for round_ in range(args.rounds):
            for jobs in args.jobs:
                out = Path(folder) / f"j{jobs}-r{round_}"
                wall, drew = run_sample(args.space, args.samples, jobs, out)
                times[jobs].append(wall)
                outs.setdefault(jobs, out)
        reference = outs[args.jobs[0]]
        identical = all(same_files(reference, out) for out in outs.values())
        as_given = same_files(reference, args.reference) if args.reference else None
    print(f"`archspec sample {args.space.name} -n {args.samples:,} --seed 0` ({drew}); files identical for every")
    print(f"--jobs: {'yes' if identical else 'NO'}", end="")
    if args.reference:
        print(f"; the same as {args.reference}: {'yes' if as_given else 'NO'}", end="")
    print("\n")
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

    worker, main = phase_costs(args.space, 1000, args.tmp)
    print("\nWhere the time goes, in one process (the first 1,000 samples), and an interpreter's start with the")
    print(f"command's imports: {start_seconds():.2f} s.\n")
    print("| phase | ms per draw (workers) | ms per accepted spec (main process) |")
    print("|---|---|---|")
    for label, ms in worker.items():
        print(f"| {label} | {ms:.3f} | |")
    for label, ms in main.items():
        print(f"| {label} | | {ms:.3f} |")
    print(f"\nCreating a small file where the runs write: {file_cost(args.tmp):.3f} ms (after).")
    print(f"Load average {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
