"""On a GPU: every stock spec builds on CUDA and computes what the CPU build computes."""

from __future__ import annotations

import pytest
import torch
from conftest import STOCK
from parity import randomize_norms

import archspec

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("name", [n for n in STOCK if n != "regnet_y_128gf"])
def test_cuda_build_matches_the_cpu_build(name):
    # TF32 would change the arithmetic, not the model: compare in full float32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    plan = archspec.load_plan(name)
    cpu = randomize_norms(archspec.build(name, device="cpu")).eval()
    gpu = archspec.build(name, device="cuda").eval()
    assert next(gpu.parameters()).is_cuda
    gpu.load_state_dict(cpu.state_dict(), strict=True)
    x = torch.randn(2, plan.input_channels, *plan.input_size)
    with torch.no_grad():
        expected = cpu(x)
        got = gpu(x.cuda()).cpu()
    scale = expected.abs().max().item() or 1.0
    assert (got - expected).abs().max().item() <= 1e-4 * max(1.0, scale)


def test_auto_device_is_cuda_when_there_is_one():
    assert next(archspec.build("resnet20").parameters()).device.type == "cuda"
