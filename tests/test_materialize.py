"""A built model is allocated and initialised in one pass: each tensor written once, with the same laws as
torchvision's (or timm's) constructor, and the same weights for the same seed whatever the thread count."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode

import archspec
from archspec.plan.layouts import init_laws
from archspec.plan.load import load_plan


class _Writes(TorchFunctionMode):
    """Counts the in-place writes (`normal_`, `fill_`, ...) into each tensor with storage, by address."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter[int] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        target = args[0] if args else None
        tensor = isinstance(target, torch.Tensor) and target.device.type != "meta"
        if tensor and name.endswith("_") and not name.startswith("__"):
            self.writes[target.data_ptr()] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["resnet18", "regnet_y_400mf", "convnext_tiny", "efficientnet_b0"])
def test_every_tensor_is_written_exactly_once(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every draw on this thread, where the mode sees it
    try:
        with _Writes() as mode:
            model = archspec.build(name, device="cpu", overrides=["zero_init_residual=true"])
    finally:
        torch.set_num_threads(threads)
    tensors = list(model.parameters()) + list(model.buffers())
    counts = [mode.writes[t.data_ptr()] for t in tensors if t.numel()]
    assert counts and set(counts) == {1}, Counter(counts)


def test_the_same_seed_gives_the_same_weights_for_any_number_of_threads():
    threads = torch.get_num_threads()
    try:
        states = []
        for count in (1, 2, 1):
            torch.set_num_threads(count)
            torch.manual_seed(5)
            states.append(archspec.build("resnet18", device="cpu").state_dict())
    finally:
        torch.set_num_threads(threads)
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]) and torch.equal(value, states[2][key]), key
    torch.manual_seed(6)
    other = archspec.build("resnet18", device="cpu").state_dict()
    assert not torch.equal(other["conv1.weight"], states[0]["conv1.weight"])


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "regnet_x_400mf",
        "convnext_tiny",
        "efficientnet_b0",
        "mobilenet_v2",
        pytest.param("vgg11_bn", marks=pytest.mark.slow),
        pytest.param("efficientnet_b2", marks=pytest.mark.slow),
    ],
)
def test_initial_weights_follow_torchvisions_laws(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)().state_dict()
    model = archspec.build(name, device="cpu").state_dict()
    assert list(model) == list(reference)
    for key, theirs in reference.items():
        ours = model[key]
        constant = theirs.numel() == 1 or bool(theirs.amin() == theirs.amax())
        if theirs.is_floating_point() and theirs.numel() >= 64 and not constant:
            # A random tensor: the same spread and range (He normal, truncated N(0, 0.02), N(0, 0.01), torch's
            # uniform or EfficientNet's). Two samples' standard deviations differ by about 1/sqrt(n) of it
            # (relative), so 5/sqrt(n) tells apart laws whose spreads differ by a few percent on large layers.
            n = theirs.numel()
            assert ours.std().item() == pytest.approx(theirs.std().item(), rel=5 / math.sqrt(n)), key
            assert ours.mean().abs().item() < 5 / math.sqrt(n) * theirs.std().item(), key
            assert ours.abs().max().item() <= 1.5 * theirs.abs().max().item(), key
        elif not theirs.is_floating_point() or constant:
            assert torch.equal(ours, theirs), key  # constants: unit and zero norms, zero biases, running stats


def _he_std(weight: torch.Tensor) -> float:
    fan_out = weight.shape[0] * weight[0, 0].numel()
    return math.sqrt(2 / fan_out)


def test_a_stage_of_another_family_starts_as_that_family_does(tmp_path):
    # A ConvNeXt last stage (index 3, layer4) in a ResNet: its downsampling layer and blocks follow ConvNeXt's
    # law (truncated N(0, 0.02), zero biases); the stem, the other stages and the head ResNet's (He normal,
    # torch's linear).
    spec = tmp_path / "hybrid.yaml"
    spec.write_text("extends: resnet50\nstages:\n  3: {block: convnext}\n")
    torch.manual_seed(0)
    model = archspec.build(str(spec), device="cpu")
    convnext, resnet = [], []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.numel() >= 4096:
            (convnext if name.startswith("layer4.") else resnet).append((name, module))
    assert len(convnext) == 1 + 3 * 3  # the downsampling conv; per block the depthwise conv and two linears
    for name, module in convnext:
        n = module.weight.numel()
        assert module.weight.std().item() == pytest.approx(0.02, rel=5 / math.sqrt(n)), name
        assert module.bias is None or not module.bias.any(), name
    for name, module in resnet:
        if isinstance(module, nn.Conv2d):
            expected = _he_std(module.weight)
            assert module.weight.std().item() == pytest.approx(expected, rel=5 / math.sqrt(module.weight.numel())), name
    fc = model.get_submodule("fc")
    bound = 1 / math.sqrt(fc.in_features)  # torch's own linear, weight and bias
    assert fc.weight.abs().max().item() <= bound and fc.bias.abs().max().item() > 0.5 * bound


def test_a_network_of_one_family_has_one_law():
    expected = {
        "resnet50": ("he_fan_out", "torch"),
        "regnet_y_400mf": ("he_fan_out", "normal"),
        "vgg11": ("he_fan_out", "normal"),
        "convnext_tiny": ("trunc_normal", "trunc_normal"),
        "mobilenet_v2": ("he_fan_out", "normal"),
        "efficientnet_b0": ("he_fan_out", "uniform_out"),
    }
    for name, (conv, linear) in expected.items():
        law, exceptions = init_laws(load_plan(name))
        assert (law.conv, law.linear) == (conv, linear) and not exceptions, name


def test_a_layer_scale_starts_at_the_value_its_spec_gives():
    # torchvision's ConvNeXt starts every block's layer scale at 1e-6; the spec says so, and the one-pass
    # initialisation keeps it.
    model = archspec.build("convnext_tiny", device="cpu")
    scales = [tensor for name, tensor in model.named_parameters() if name.endswith("layer_scale")]
    reference = torchvision.models.convnext_tiny()
    expected = [tensor for name, tensor in reference.named_parameters() if name.endswith("layer_scale")]
    assert len(scales) == len(expected) == 18
    for ours, theirs in zip(scales, expected, strict=True):
        assert torch.equal(ours.detach().flatten(), theirs.detach().flatten())
