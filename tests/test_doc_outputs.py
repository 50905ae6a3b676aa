"""Output shown in the README and docs is what the commands print today."""

from __future__ import annotations

import re
import shlex

import pytest
import torch
import torchvision
from conftest import ROOT
from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

_MARKER = re.compile(r"<!-- output: (?P<command>.+?) -->\n```console\n\$ (?P=command)\n(?P<body>.*?)```", re.S)
# Lines that hold wall-clock times, or that depend on the machine.
_VOLATILE = re.compile(r"^(built in |archspec: )")


def _examples():
    for name in ("README.md", "docs/cli.md", "docs/variants.md", "docs/paper.md"):
        path = ROOT / name
        if not path.exists():
            continue
        text = path.read_text()
        for match in _MARKER.finditer(text):
            yield pytest.param(match.group("command"), match.group("body"), id=f"{name}: {match.group('command')}")


def _stable(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines() if not _VOLATILE.match(line)]


@pytest.mark.parametrize("command,shown", list(_examples()))
def test_documented_output_is_current(cli, command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)
    assert args[0] == "archspec"
    result = cli(*args[1:])
    assert _stable(result.stdout) == _stable(shown)


def test_readme_counting_table_equals_fvcore_on_torchvisions_resnet50():
    text = (ROOT / "README.md").read_text()
    model = torchvision.models.resnet50().eval()
    x = torch.zeros(1, 3, 224, 224)
    flops = FlopCountAnalysis(model, x)
    flops.unsupported_ops_warnings(False)
    by_op = flops.by_operator()
    activations = ActivationCountAnalysis(model, x)
    activations.unsupported_ops_warnings(False)
    assert f"| {flops.total():,} |" in text
    assert f"| {by_op['conv'] + by_op['linear']:,} |" in text
    assert f"| {activations.total():,} |" in text
