"""The paper's CIFAR nets (Table 6) and the depth each stock spec's name promises."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import CONVNEXTS, REGNETS, STOCK

import archspec

# He et al. 2015, Table 6, exact counts with option A shortcuts (shared/reference/published-numbers.md).
CIFAR_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}


@pytest.mark.parametrize("name,params", CIFAR_PARAMS.items())
def test_cifar_resnets_have_the_papers_exact_parameter_counts(name, params):
    assert archspec.count(name).params == params


@pytest.mark.parametrize(
    "name", ["resnet20", "resnet56", "plain20", pytest.param("resnet1202", marks=pytest.mark.slow)]
)
def test_cifar_nets_output_ten_logits(name):
    model = archspec.build(name, device="cpu").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == archspec.count(name).params


def test_preact_resnet164_has_about_the_papers_parameter_count():
    # He et al. 2016: ResNet-164 (pre-activation, bottleneck) has 1.7M parameters.
    assert archspec.count("preact_resnet164").params == pytest.approx(1.7e6, rel=0.01)


# ResNet-D variants keep the name of the net they modify although their deep stem adds two
# convs (timm's naming); they are checked below against 2 + the number in the name.
_DEEP_STEM = {"resnet18d", "resnet26d", "resnet50d", "resnext50d_32x4d"}


# MobileNets and EfficientNets carry a version or a scale in their names, not a depth.
_NOT_BY_DEPTH = [name for name in STOCK if name.startswith(("mobilenet", "efficientnet"))]


@pytest.mark.parametrize("name", [name for name in STOCK if name not in REGNETS + CONVNEXTS + _NOT_BY_DEPTH])
def test_weighted_layer_count_matches_the_name(name):
    depth = int(re.search(r"(\d+)", name).group(1))
    expected = depth + 2 if name in _DEEP_STEM else depth
    assert archspec.count(name).layers == expected


@pytest.mark.parametrize("name", REGNETS)
def test_a_regnet_has_three_weighted_layers_per_block_plus_stem_and_classifier(name):
    # RegNets are named by compute regime (400MF ... 128GF), not by depth.
    blocks = sum(stage.depth for stage in archspec.load_plan(name).stages)
    assert archspec.count(name).layers == 3 * blocks + 2


def test_mobilenet_v2_is_53_weighted_layers_deep():
    # The count Keras and MATLAB publish for MobileNetV2: 52 convs and the classifier.
    assert archspec.count("mobilenet_v2").layers == 53
