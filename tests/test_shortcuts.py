"""Shortcut options A, B and C (He et al. 2015, section 3.3)."""

from __future__ import annotations

import pickle

import pytest
import torch

import archspec
from archspec.nn.layers import ResidualBlock, ZeroPadShortcut


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, ResidualBlock)]


def _projections(model):
    return [b for b in _blocks(model) if isinstance(b.downsample, torch.nn.Sequential)]


def test_option_a_adds_no_parameters():
    a = archspec.count("resnet20")
    b = archspec.count("resnet20", overrides=["shortcut=B"])
    assert not any(_projections(archspec.build("resnet20", device="cpu")))
    # Option B adds two projections (conv + BN) where the width doubles: 16->32, 32->64.
    assert b.params - a.params == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_option_a_subsamples_and_pads_with_exact_zeros():
    shortcut = ZeroPadShortcut(stride=2, in_channels=16, out_channels=40)
    x = torch.randn(2, 16, 9, 9)
    y = shortcut(x)
    assert y.shape == (2, 40, 5, 5)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_option_a_pads_any_increase_in_width_not_only_doubling():
    spec = {
        "input": {"size": 32},
        "stem": {"type": "cifar", "width": 16},
        "shortcut": "A",
        "stages": [{"depth": 1, "width": 16}, {"depth": 1, "width": 24}, {"depth": 1, "width": 40}],
        "head": {"num_classes": 10},
    }
    model = archspec.build(spec, device="cpu").eval()
    pads = [b.downsample for b in _blocks(model) if isinstance(b.downsample, ZeroPadShortcut)]
    assert [p.extra for p in pads] == [8, 16]
    assert sum(p.numel() for p in model.parameters()) == archspec.count(spec).params
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_option_a_model_pickles():
    model = archspec.build("resnet20", device="cpu")
    clone = pickle.loads(pickle.dumps(model))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clone.eval()(x), model.eval()(x))


def test_option_a_cannot_shrink_width():
    spec = {
        "stem": {"type": "cifar"},
        "shortcut": "A",
        "stages": [{"depth": 1, "width": 32}, {"depth": 1, "width": 16}],
    }
    with pytest.raises(
        archspec.SpecError, match="option A pads channels with zeros and cannot reduce width from 32 to 16"
    ):
        archspec.load_plan(spec)


def test_option_b_projects_only_where_the_shape_changes():
    # ResNet-34: stages 2-4 change width and stride in their first block.
    assert len(_projections(archspec.build("resnet34", device="cpu"))) == 3
    # ResNet-50: also the first block, which widens 64 -> 256.
    assert len(_projections(archspec.build("resnet50", device="cpu"))) == 4


def test_option_c_projects_on_every_block():
    model = archspec.build("resnet34", device="cpu", overrides=["shortcut=C"])
    assert len(_projections(model)) == len(_blocks(model)) == 16


def test_a_stage_can_override_the_shortcut_option():
    model = archspec.build("resnet34", device="cpu", overrides=["stages.3.shortcut=C"])
    assert len(_projections(model)) == 2 + 3


def test_plain_blocks_have_no_shortcut():
    model = archspec.build("plain34", device="cpu")
    assert all(not b.has_shortcut and b.downsample is None for b in _blocks(model))
