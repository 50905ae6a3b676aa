"""Stock specs of torchvision architectures are torchvision's models: parameters, keys, outputs, published numbers.

Every output comparison goes through `parity.load_for_comparison` (random norms, then a strict load) and
`parity.assert_same_outputs` (eval at two sizes, one odd and non-square, then train mode).
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import TORCHVISION_ARCHS, fast_subset
from parity import assert_same_outputs, load_for_comparison

import archspec

# One of each family in the fast tier (basic, bottleneck, VGG, MobileNetV2, EfficientNet); every architecture
# in the slow tier (grouped and wide bottlenecks and VGG without batch norm among them: a ResNeXt stage is
# compared with torchvision's in test_stage_knobs.py). The state_dict test below covers all of them everywhere.
FAST_OUTPUTS = {
    "resnet18",
    "resnet50",
    "vgg11_bn",
    "mobilenet_v2",
    "efficientnet_b0",
}


@pytest.mark.parametrize("name", fast_subset(TORCHVISION_ARCHS, FAST_OUTPUTS))
def test_torchvision_weights_load_strictly_and_outputs_match(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    model = archspec.build(name, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    load_for_comparison(model, reference)
    assert_same_outputs(model, reference, [(128, 128), (97, 130)])


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    with torch.device("meta"):  # shapes only: both models without storage or initialisation
        reference = getattr(torchvision.models, name)().state_dict()
    ours = archspec.build(name, device="meta").state_dict()
    assert list(ours) == list(reference)
    assert all(ours[k].shape == reference[k].shape for k in reference)


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_counts_equal_torchvisions_published_metadata(name):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    counts = archspec.count(name)
    assert counts.params == meta["num_params"]
    # torchvision publishes conv+fc multiply-adds in G, rounded to three decimals.
    assert round(counts.macs / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)


def test_initialisation_follows_torchvision():
    model = archspec.build("resnet50", device="cpu")
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    # He-normal with fan_out: std = sqrt(2 / (out_channels * k * k)).
    std = model.conv1.weight.std().item()
    assert std == pytest.approx((2 / (64 * 49)) ** 0.5, rel=0.1)


def test_zero_init_residual_zeroes_each_blocks_last_norm():
    model = archspec.build("resnet50", device="cpu", overrides=["zero_init_residual=true"])
    for stage in (model.layer1, model.layer4):
        for block in stage:
            assert torch.all(block.bn3.weight == 0)
            assert not torch.all(block.bn2.weight == 0)
