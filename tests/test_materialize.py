"""A built model is allocated and initialised in one pass: each tensor written once, with the same laws as
torchvision's (or timm's) constructor, and the same weights for the same seed whatever the thread count."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torchvision
from torch.overrides import TorchFunctionMode

import archspec


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


@pytest.mark.parametrize("name", ["resnet18", "regnet_y_400mf"])
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


@pytest.mark.parametrize("name", ["resnet18", "regnet_x_400mf", pytest.param("vgg11_bn", marks=pytest.mark.slow)])
def test_initial_weights_follow_torchvisions_laws(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)().state_dict()
    model = archspec.build(name, device="cpu").state_dict()
    assert list(model) == list(reference)
    for key, theirs in reference.items():
        ours = model[key]
        if theirs.is_floating_point() and theirs.numel() >= 2000 and theirs.std() > 0:
            # A random tensor: the same spread and range (kaiming normal, N(0, 0.01) or torch's uniform).
            assert ours.std().item() == pytest.approx(theirs.std().item(), rel=0.1), key
            assert ours.mean().abs().item() < 0.1 * theirs.std().item(), key
            assert ours.abs().max().item() <= 1.5 * theirs.abs().max().item(), key
        elif not theirs.is_floating_point() or theirs.std() == 0 or theirs.numel() == 1:
            assert torch.equal(ours, theirs), key  # constants: unit and zero norms, fresh running stats


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
