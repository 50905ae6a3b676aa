"""The one way parity tests compare an archspec model with a reference model (torchvision, timm, any later family).

Fresh models make a weak comparison: timm zero-initialises the last norm of every residual
block (each block then reduces to its shortcut) and fresh batch norms (mean 0, variance 1,
weight 1, bias 0) are nearly identities, so a wrong conv inside a block or a misplaced norm
could go unseen. `load_for_comparison` first gives every norm of the reference random affine
parameters and random running statistics (fixed seed), then loads the reference's state_dict
into archspec's model strictly, so both hold the same values and every weight reaches the
output. `assert_same_outputs` then compares them in eval mode at each input size given and,
with `train_batch`, once more in train mode (batch statistics) to catch a misplaced norm.
"""

from __future__ import annotations

import torch
from torch import nn

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
# Both models run the same ops in the same order, so outputs agree to float32 rounding.
TOLERANCE = 1e-5


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random affine parameters and running statistics for every norm layer of `model`, and random layer scales
    (in place)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator) + 0.5  # in [0.5, 1.5)

    def normal(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * 0.1

    with torch.no_grad():
        for module in model.modules():
            # A learned per-channel scale on a block's output (ConvNeXt's layer_scale, 1e-6 when fresh).
            scale = module._parameters.get("layer_scale")
            if scale is not None:
                scale.copy_(uniform(scale.shape))
            if not isinstance(module, _NORMS):
                continue
            if getattr(module, "weight", None) is not None:
                module.weight.copy_(uniform(module.weight.shape))
            if getattr(module, "bias", None) is not None:
                module.bias.copy_(normal(module.bias.shape))
            if getattr(module, "running_mean", None) is not None:
                module.running_mean.copy_(normal(module.running_mean.shape))
                module.running_var.copy_(uniform(module.running_var.shape))
    return model


def load_for_comparison(ours: nn.Module, reference: nn.Module, seed: int = 0) -> None:
    """Randomize the reference's norms, then load its whole state into `ours` (strict): both hold the same values."""
    randomize_norms(reference, seed)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval()
    reference.eval()


def _as_list(y: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (list, tuple)) else [y]


def max_difference(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(max |ours - reference|, max |reference|) over all outputs for input `x`.

    Each model runs from the same random state, so dropout and drop path draw the same masks in train mode.
    """
    state = torch.get_rng_state()
    with torch.no_grad():
        got = _as_list(ours(x))
        torch.set_rng_state(state)
        want = _as_list(reference(x))
    assert [g.shape for g in got] == [w.shape for w in want]
    worst = max((g - w).abs().max().item() for g, w in zip(got, want, strict=True))
    scale = max(w.abs().max().item() for w in want)
    return worst, scale


def outputs_agree(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> bool:
    worst, scale = max_difference(ours, reference, x)
    return worst <= TOLERANCE * max(1.0, scale)


def assert_same_outputs(
    ours: nn.Module,
    reference: nn.Module,
    sizes: list[tuple[int, int]],
    channels: int = 3,
    train_batch: bool = True,
    seed: int = 0,
) -> None:
    """Equal outputs in eval mode at every size, and (with `train_batch`) in train mode at the first size.

    Train mode updates both models' running statistics alike; it runs last, and the models are put
    back in eval mode afterwards.
    """
    generator = torch.Generator().manual_seed(seed)
    for height, width in sizes:
        x = torch.randn(2, channels, height, width, generator=generator)
        worst, scale = max_difference(ours, reference, x)
        assert worst <= TOLERANCE * max(1.0, scale), (
            f"eval at {height}x{width}: outputs differ by {worst:.3g} (outputs up to {scale:.3g})"
        )
    if train_batch:
        height, width = sizes[0]
        x = torch.randn(4, channels, height, width, generator=generator)
        ours.train()
        reference.train()
        try:
            worst, scale = max_difference(ours, reference, x)
        finally:
            ours.eval()
            reference.eval()
        assert worst <= TOLERANCE * max(1.0, scale), (
            f"train mode at {height}x{width}: outputs differ by {worst:.3g} (outputs up to {scale:.3g})"
        )


def perturb_one_block_conv(model: nn.Module, factor: float = 1.01) -> str:
    """Scale one 3x3 conv inside one block (the middle one of the network's 3x3 convs) by `factor`; its name.

    In a network without 3x3 convs, the middle depthwise conv's first channel is scaled instead: a layer
    norm over channels after it would undo a scaling of all of them alike (ConvNeXt)."""
    convs = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3)
    ] or [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1
    ]
    name, conv = convs[len(convs) // 2]
    with torch.no_grad():
        if conv.kernel_size == (3, 3):
            conv.weight.mul_(factor)
        else:
            conv.weight[:1].mul_(factor)
    return name
