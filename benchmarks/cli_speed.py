"""CLI speed: `archspec flops` over every stock spec (analytic and fvcore) as a ratio to `import torch`.

Run by hand: python benchmarks/cli_speed.py [--repeat 5]. Prints a Markdown table for docs/performance.md.
Each command runs in a fresh interpreter, alternating with `python -c "import torch"`, and the
median of the repeats is reported, so the ratio is measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from archspec.lang.sources import stock_names


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fvcore", action="store_true", help="also time the fvcore counter (slow: builds every model)")
    args = parser.parse_args()
    names = stock_names()
    commands = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        f"archspec flops <all {len(names)} stock specs>": [sys.executable, "-m", "archspec", "flops", *names],
        "archspec validate <all>": [sys.executable, "-m", "archspec", "validate", *names],
        "archspec list": [sys.executable, "-m", "archspec", "list"],
    }
    if args.fvcore:
        commands[f"archspec flops --counter fvcore <all {len(names)}>"] = [
            sys.executable,
            "-m",
            "archspec",
            "flops",
            "--counter",
            "fvcore",
            *names,
        ]
    times: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(args.repeat):
        for label, command in commands.items():
            if "fvcore" in label and i > 0:
                continue  # one run is enough to show the scale
            times[label].append(_time(command))
            print(f"run {i + 1}/{args.repeat}: {label}: {times[label][-1]:.2f} s", file=sys.stderr)
    torch_time = statistics.median(times["python -c 'import torch'"])
    print("| command | median seconds | ratio to `import torch` |")
    print("|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| `{label}` | {median:.2f} | {median / torch_time:.2f}x |")


if __name__ == "__main__":
    main()
