"""Shared fixtures: the CLI runner and the lists of stock specs the tests sweep over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archspec.lang.sources import stock_names

ROOT = Path(__file__).resolve().parent.parent

# The fast tier runs in two pytest-xdist workers (pyproject.toml): each computes with one torch thread, so that the
# two do not ask a 2-core machine for four. Set before any test module imports torch; `-n 0` keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Every architecture torchvision ships that has a stock spec of the same name.
TORCHVISION_ARCHS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "mobilenet_v2",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
]
TIMM_ARCHS = ["resnet18d", "resnet26d", "resnet50d", "seresnet50", "resnext50d_32x4d"]
STOCK = stock_names()
# torchvision's RegNets, named by compute regime rather than depth.
REGNETS = [name for name in STOCK if name.startswith("regnet_")]
# torchvision's ConvNeXts, named by size (tiny ... large).
CONVNEXTS = [name for name in STOCK if name.startswith("convnext_")]
# A training run small enough for a test on the CPU: two batches of synthetic images per epoch.
SMALL_TRAIN = ("--data", "synthetic:64", "--batch", "32", "--device", "cpu")


def fast_subset(names: list[str], fast: set[str]) -> list[object]:
    """`names` as test parameters: those in `fast` in the fast tier, the others marked `slow`, so that
    the default run covers each family once and `pytest -m slow` covers the rest."""
    assert fast <= set(names), fast - set(names)
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow) for name in names]


_TORCH_PROBE = """
import sys
from archspec.cli import app
try:
    app({args!r}, standalone_mode=False)
except SystemExit:
    pass
print("TORCH_IMPORTED" if "torch" in sys.modules else "NO_TORCH", file=sys.stderr)
"""


def run_without_torch(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `archspec ARGS` in a fresh interpreter from the repository root; its stderr ends with
    NO_TORCH when the command never imported torch (TORCH_IMPORTED otherwise)."""
    probe = _TORCH_PROBE.format(args=args)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def cli():
    """Run the archspec CLI in-process; returns click's Result (stdout and stderr kept apart)."""
    from archspec.cli import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return run


@pytest.fixture
def write(tmp_path):
    """Write a spec file into a temporary folder and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write
