"""Training throughput of `archspec train` (images/s), ResNet-20 on 32x32 synthetic data by default.

    python benchmarks/train_throughput.py                       # fp32, channels-last, bf16
    python benchmarks/train_throughput.py --configs fp32 compile --threads 1 2

Each configuration trains `--epochs` epochs of `--images` synthetic images through the same code
path as `archspec train` (forward, backward, SGD step; held-out evaluation is not timed) and
reports the median of the epochs after the first, which pays for warm-up (and for compilation).
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch

from archspec.tools.train.loop import Options, Recipe, train

CONFIGS = {
    "fp32": ({}, {}),
    "channels-last": ({}, {"channels_last": True}),
    "bf16": ({"amp": "bf16"}, {}),
    "bf16+channels-last": ({"amp": "bf16"}, {"channels_last": True}),
    "compile": ({}, {"compile": True}),
}


def measure(spec: str, images: int, batch: int, epochs: int, threads: int, config: str) -> float:
    torch.set_num_threads(threads)
    recipe_args, option_args = CONFIGS[config]
    recipe = Recipe(epochs=epochs, batch=batch, lr=0.1, **recipe_args)
    (result,) = train([spec], data=f"synthetic:{images}", recipe=recipe, options=Options(device="cpu", **option_args))
    return statistics.median(row["images_per_second"] for row in result.history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--images", type=int, default=1024, help="synthetic training images per epoch")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4, help="the first is warm-up")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--configs", nargs="+", default=["fp32", "channels-last", "bf16"], choices=sorted(CONFIGS))
    args = parser.parse_args()
    print(
        f"{args.spec}, batch {args.batch}, {args.images} synthetic images per epoch, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| configuration | threads | images/s |\n|---|---|---|")
    for threads in args.threads:
        for config in args.configs:
            print(
                (
                    f"| {config} | {threads} | "
                    f"{measure(args.spec, args.images, args.batch, args.epochs, threads, config):.0f} |"
                ),
                flush=True,
            )
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
