"""Give a model built on the meta device its storage and its initial values, each tensor written once.

Building the modules on the meta device skips the initialisation torch's layers do in their
constructors, which the network's own initialisation would overwrite anyway; here every tensor is
allocated on the target and drawn once, with the laws of the family's reference constructor
(`archspec.plan.layouts.InitLaw`): He-normal convs (fan out) with zero bias, or ConvNeXt's truncated
N(0, 0.02) convs and linear layers with zero bias; linear layers drawn as torch does (ResNet), from
N(0, 0.01) (VGG, RegNet, MobileNetV2) or uniform in +-1/sqrt(out features) (EfficientNet), with zero
bias but in torch's own; unit norms with zero bias and fresh running statistics; layer scales at their
spec's value. A stage of another family's kind (a ConvNeXt stage in a ResNet) follows its own family's
law; the stem and the head follow the network's.

Seeds: each tensor drawn at random gets its own generator, seeded from torch's global generator in the
order of `model.named_parameters()`; the draws themselves run on several threads (CPU) in any order.
So `torch.manual_seed(s)` before a build gives the same weights every time, for any number of threads,
and consumes one draw of the global generator per random tensor; the values are not those torchvision's
constructor draws from the same seed (it draws every conv twice), only their distribution is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import torch
from torch import nn

from archspec.nn.layers import ResidualBlock
from archspec.plan.layouts import InitLaw

# Tensors smaller than this are drawn on the calling thread: a task would cost more than the draw.
_THREADED_FROM = 1 << 16

Draw = Callable[[torch.Generator], object]


def materialize(
    model: nn.Module,
    device: torch.device,
    *,
    law: InitLaw,
    exceptions: dict[tuple[str, ...], InitLaw],
    zero_init_residual: bool,
) -> None:
    """Allocate every tensor of the meta `model` on `device` (in place) and initialise each one once, with
    `law`, or with the law of the nearest module path above it in `exceptions`
    (`archspec.plan.layouts.init_laws`)."""
    model.to_empty(device=device)
    zeroed = _zeroed(model) if zero_init_residual else set()
    draws: list[tuple[int, Draw]] = []
    with torch.no_grad():
        for name, module in model.named_modules():
            draws += _initialise(module, _law_at(name, law, exceptions), zeroed)
    _run(draws, device)


def _law_at(name: str, law: InitLaw, exceptions: dict[tuple[str, ...], InitLaw]) -> InitLaw:
    """The law of the module at `name`: that of the deepest path in `exceptions` that holds it, else `law`."""
    path = tuple(name.split(".")) if name else ()
    for end in range(len(path), 0, -1):
        found = exceptions.get(path[:end])
        if found is not None:
            return found
    return law


def _zeroed(model: nn.Module) -> set[int]:
    """The ids of the tensors zero-initialised residual training starts at 0 (Goyal et al. 2017): the last
    norm (or conv) of each residual block with a shortcut, weight and bias."""
    ids = set()
    for module in model.modules():
        if isinstance(module, ResidualBlock) and module.has_shortcut and module.zero_init:
            last = module.get_submodule(".".join(module.zero_init))
            ids |= {id(tensor) for tensor in last.parameters(recurse=False)}
    return ids


def _initialise(module: nn.Module, law: InitLaw, zeroed: set[int]) -> list[tuple[int, Draw]]:
    """Write the constant tensors of `module` now; return the random ones as (size, draw) to run later."""
    own = dict(module.named_parameters(recurse=False))
    if not own and not list(module.buffers(recurse=False)):
        return []
    weight, bias = own.get("weight"), own.get("bias")
    draws: list[tuple[int, Draw]] = []
    if isinstance(module, nn.Conv2d) and weight is not None:
        conv = _kaiming_normal(weight) if law.conv == "he_fan_out" else _truncated_normal(weight)
        draws.append(_random(weight, zeroed, conv))
    elif isinstance(module, nn.Linear) and weight is not None:
        if law.linear == "torch":
            bound = 1 / math.sqrt(weight.shape[1]) if weight.shape[1] else 0.0
            draws.append(_random(weight, zeroed, _uniform(weight, bound)))
            if bias is not None:
                draws.append(_random(bias, zeroed, _uniform(bias, bound)))
                bias = None
        elif law.linear == "normal":
            draws.append(_random(weight, zeroed, _normal(weight, 0.01)))
        elif law.linear == "uniform_out":
            draws.append(_random(weight, zeroed, _uniform(weight, 1 / math.sqrt(weight.shape[0]))))
        else:
            draws.append(_random(weight, zeroed, _truncated_normal(weight)))
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
        if weight is not None:
            weight.fill_(0.0 if id(weight) in zeroed else 1.0)
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    else:  # a layer the network's initialisation leaves as torch makes it
        reset = getattr(module, "reset_parameters", None)
        if not callable(reset):
            raise TypeError(f"no one-pass initialisation for {type(module).__name__}")
        reset()
        return []
    if bias is not None:
        bias.zero_()
    return [draw for draw in draws if draw[0]]


def _random(tensor: torch.Tensor, zeroed: set[int], draw: Draw) -> tuple[int, Draw]:
    """A random tensor's draw, or none (and the tensor zeroed) when it starts at 0."""
    if id(tensor) in zeroed:
        tensor.zero_()
        return 0, draw
    return tensor.numel(), draw


def _kaiming_normal(weight: torch.Tensor) -> Draw:
    return lambda generator: nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu", generator=generator)


def _truncated_normal(weight: torch.Tensor) -> Draw:
    # ConvNeXt's law: std 0.02, cut at +-2 (absolute bounds, as torchvision passes them: 100 standard deviations).
    return lambda generator: nn.init.trunc_normal_(weight, std=0.02, a=-2.0, b=2.0, generator=generator)


def _normal(tensor: torch.Tensor, std: float) -> Draw:
    return lambda generator: tensor.normal_(0.0, std, generator=generator)


def _uniform(tensor: torch.Tensor, bound: float) -> Draw:
    return lambda generator: tensor.uniform_(-bound, bound, generator=generator)


def _run(draws: list[tuple[int, Draw]], device: torch.device) -> None:
    """Seed one generator per draw from the global generator, in order; draw the large ones on threads."""
    seeded = [(size, draw, _generator(device)) for size, draw in draws]
    small = [(draw, generator) for size, draw, generator in seeded if size < _THREADED_FROM]
    large = [(draw, generator) for size, draw, generator in seeded if size >= _THREADED_FROM]
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    with torch.no_grad():
        for draw, generator in small:
            draw(generator)
        if threads <= 1 or len(large) <= 1:
            for draw, generator in large:
                draw(generator)
            return
        # torch's random kernels release the GIL: the threads draw in parallel.
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(_draw_with, large))


def _draw_with(item: tuple[Draw, torch.Generator]) -> None:
    with torch.no_grad():
        item[0](item[1])


def _generator(device: torch.device) -> torch.Generator:
    # 63 random bits of the global generator (random_ on int64 draws from [0, 2**63 - 1]).
    seed = cast(int, torch.empty((), dtype=torch.int64).random_().item())
    return torch.Generator(device=device).manual_seed(seed)
