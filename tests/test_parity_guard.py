"""The parity helper is effective: with its random norms, one 3x3 conv inside one block scaled by 1.01 changes
the output beyond the comparison's tolerance, for every family of stock spec that has a reference model."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from parity import load_for_comparison, outputs_agree, perturb_one_block_conv

import archspec

FAMILIES = [
    ("torchvision", "resnet18", 64),  # basic blocks
    ("torchvision", "resnet50", 64),  # bottleneck blocks
    ("torchvision", "resnext50_32x4d", 64),  # grouped bottlenecks
    ("torchvision", "wide_resnet50_2", 64),
    ("torchvision", "vgg11", 32),
    ("torchvision", "vgg11_bn", 32),
    ("timm", "resnet18d", 64),  # deep stem, average-pool shortcuts
    ("timm", "resnet50d", 64),
    ("timm", "seresnet50", 64),  # squeeze-and-excitation
    ("timm", "resnext50d_32x4d", 64),
    ("torchvision", "regnet_x_400mf", 64),
    ("torchvision", "regnet_y_400mf", 64),
    ("torchvision", "convnext_tiny", 64),  # depthwise 7x7 convs, layer norms, layer scales
]


def _reference(library: str, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if library == "timm":
        return timm.create_model(name, pretrained=False)
    return getattr(torchvision.models, name)()


# The fast tier checks the guard on basic blocks (torchvision and timm's deep stem) and on RegNetX; the slow
# tier on every family (each family's own parity test runs in the fast tier).
FAST = {"resnet18", "resnet18d", "regnet_x_400mf"}


@pytest.mark.parametrize(
    "library,name,size",
    [pytest.param(*family, id=family[1], marks=() if family[1] in FAST else pytest.mark.slow) for family in FAMILIES],
)
def test_one_perturbed_conv_inside_a_block_fails_the_comparison(library, name, size):
    reference = _reference(library, name)
    model = archspec.build(name, device="cpu")
    load_for_comparison(model, reference)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    assert outputs_agree(model, reference, x)  # the unperturbed pair is the control
    perturbed = perturb_one_block_conv(model)
    assert not outputs_agree(model, reference, x), f"scaling {perturbed} by 1.01 went unnoticed"
