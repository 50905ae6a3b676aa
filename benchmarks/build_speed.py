"""`archspec.build` against torchvision's constructor: seconds to a freshly initialised model, on the CPU.

Run by hand (a minute or two on a quiet 2-core machine):

    python benchmarks/build_speed.py [--specs resnet50 resnet152 regnet_y_8gf] [--rounds 7] [--threads N]

In one process, taking turns round by round (torchvision, then archspec), so that load arriving on a shared
machine falls on both alike. archspec's time is the whole `archspec.build(name, device="cpu")`: the stock
spec read, validated and planned, the memory guard, the modules built without storage, allocated and
initialised in one pass. torchvision's is `torchvision.models.NAME()` (random weights). Prints a Markdown
table of the medians and their ratio (below 1: archspec is faster), with wall and CPU seconds, and the load
average before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

import archspec


def timed(make) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    make()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", nargs="+", default=["resnet50", "resnet152", "regnet_y_8gf"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(
        f"Machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"torchvision {torchvision.__version__}; load average {os.getloadavg()[0]:.1f} before.\n"
    )
    print(
        "| model | torchvision s (wall, median) | archspec s (wall, median) | archspec / torchvision (wall) |", end=""
    )
    print(" CPU s: torchvision / archspec | ratio (CPU) |")
    print("|---|---|---|---|---|---|")
    for name in args.specs:
        constructor = getattr(torchvision.models, name)
        constructor(), archspec.build(name, device="cpu")  # warm-up: imports, caches, the allocator
        theirs, ours = [], []
        for _ in range(args.rounds):
            theirs.append(timed(constructor))
            ours.append(timed(lambda name=name: archspec.build(name, device="cpu")))
        tv_wall, as_wall = (statistics.median(t[0] for t in times) for times in (theirs, ours))
        tv_cpu, as_cpu = (statistics.median(t[1] for t in times) for times in (theirs, ours))
        print(
            f"| {name} | {tv_wall:.3f} | {as_wall:.3f} | {as_wall / tv_wall:.2f}x | {tv_cpu:.3f} / {as_cpu:.3f} | "
            f"{as_cpu / tv_cpu:.2f}x |"
        )
    print(f"\nLoad average {os.getloadavg()[0]:.1f} after.")


if __name__ == "__main__":
    main()
