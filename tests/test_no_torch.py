"""Commands that need no model never import torch, so they answer at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, run_without_torch


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", "specs/resnet50.yaml", "resnet152"],
        ["list"],
        ["show", "resnet50"],
        ["schema"],
        ["flops", "resnet152", "--vs", "vgg19"],
        ["flops", "resnet50", "--format", "json", "--by-op"],
        ["diff", "resnet50", "resnet50d"],
        ["flops", "convnext_tiny", "efficientnet_b2", "--vs", "mobilenet_v2", "--by-op", "--size", "97x130"],
        ["flops", "efficientnet_b0", "--by-module", "--depth", "3", "--size", "97x130"],
        ["show", "efficientnet_b2"],
        ["paper"],
        ["paper", "convnext", "--format", "json"],
    ],
)
def test_command_does_not_import_torch(args):
    result = run_without_torch(args)
    assert "NO_TORCH" in result.stderr, result.stderr[-2000:]


def test_importing_archspec_does_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-c", "import archspec, sys; archspec.count('resnet50'); print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "False"


def test_collecting_the_tests_that_need_no_torch_does_not_import_it():
    files = [
        "tests/test_bad_specs.py",
        "tests/test_fuzz.py",
        "tests/test_docs.py",
        "tests/test_no_torch.py",
        "tests/test_architecture.py",
    ]
    probe = (
        "import sys, pytest\n"
        f"code = pytest.main(['--collect-only', '-q', '-n', '0', '-p', 'no:cacheprovider', *{files!r}])\n"
        "print('TORCH_IMPORTED' if 'torch' in sys.modules else 'NO_TORCH', code, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "NO_TORCH 0" in result.stderr, result.stderr[-2000:] + result.stdout[-2000:]


def test_every_public_name_resolves_without_torch_and_the_api_is_keyword_only_after_source():
    probe = (
        "import inspect, sys, archspec\n"
        "from archspec.report import results\n"
        "names = [n for n in archspec.__all__ if n != '__version__']\n"
        "assert all(getattr(archspec, n) is not None for n in names)\n"
        "types = [n for n, v in vars(results).items() if isinstance(v, type) and v.__module__ == results.__name__]\n"
        "missing = sorted(set(types) - set(names))\n"
        "loose = []\n"
        "for n in ('build', 'count', 'load_plan', 'load_spec', 'load_checkpoint'):\n"
        "    params = list(inspect.signature(getattr(archspec, n)).parameters.values())\n"
        "    loose += [f'{n}({p.name})' for p in params[1:] if p.kind is not p.KEYWORD_ONLY]\n"
        "print('torch' in sys.modules, missing, loose)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False [] []", result.stderr[-2000:]
