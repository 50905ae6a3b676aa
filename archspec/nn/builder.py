"""Plan -> torch module, on the device the user asks for."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archspec.plan import planner as p
from archspec.errors import Mark, Problem, SpecError
from archspec.nn.layers import DropPath, Network, ResidualBlock, SqueezeExcite, ZeroPadShortcut

_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "silu": lambda: nn.SiLU(inplace=True), "gelu": nn.GELU}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` is CUDA when there is one, else the CPU; asking for CUDA where there is none is a SpecError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(Problem(Mark("--device"), "device", f"unknown device {name!r}; use auto, cpu or cuda")) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(Problem(Mark("--device"), "device", "CUDA was asked for, but torch sees no CUDA device here; use --device cpu or auto"))
    if resolved.type not in ("cpu", "cuda"):
        raise SpecError(Problem(Mark("--device"), "device", f"unsupported device {name!r}; use auto, cpu or cuda"))
    return resolved


def make_module(op: p.Op) -> nn.Module:
    """One torch module for one op of the plan."""
    if isinstance(op, p.Conv):
        return nn.Conv2d(op.in_channels, op.out_channels, op.kernel, op.stride, op.padding, op.dilation, op.groups, op.bias)
    if isinstance(op, p.Norm):
        return nn.BatchNorm2d(op.channels) if op.kind == "batch" else nn.GroupNorm(op.groups, op.channels)
    if isinstance(op, p.Act):
        return _ACTIVATIONS[op.kind]()
    if isinstance(op, p.MaxPool):
        return nn.MaxPool2d(op.kernel, op.stride, op.padding)
    if isinstance(op, p.AvgPool):
        return nn.AvgPool2d(op.kernel, op.stride, ceil_mode=True, count_include_pad=False)
    if isinstance(op, p.AdaptivePool):
        return nn.AdaptiveAvgPool2d(op.out_size) if op.kind == "avg" else nn.AdaptiveMaxPool2d(op.out_size)
    if isinstance(op, p.Identity):
        return nn.Identity()
    if isinstance(op, p.Flatten):
        return nn.Flatten(1)
    if isinstance(op, p.Linear):
        return nn.Linear(op.in_features, op.out_features, op.bias)
    if isinstance(op, p.Dropout):
        return nn.Dropout(op.p)
    if isinstance(op, p.ZeroPadShortcut):
        return ZeroPadShortcut(op.stride, op.in_channels, op.out_channels)
    if isinstance(op, p.SqueezeExcite):
        return SqueezeExcite(op.channels, op.reduced)
    if isinstance(op, p.Sequence):
        return nn.Sequential(_modules(op.items))
    if isinstance(op, p.Residual):
        return ResidualBlock(
            _modules(op.pre),
            _modules(op.body),
            make_module(op.shortcut) if op.shortcut is not None else None,
            _modules(op.post),
            has_shortcut=op.shortcut_kind != "none",
            shortcut_from_pre=op.shortcut_from_pre,
            drop_path=op.drop_path,
            last_norm=op.last_norm,
        )
    raise TypeError(f"no module for {type(op).__name__}")


def _modules(items) -> OrderedDict:
    return OrderedDict((name, make_module(op)) for name, op in items)


def initialize(model: nn.Module, plan: p.Plan) -> None:
    """torchvision's initialisation: He-normal convs (fan out), unit norms; VGG also re-initialises its linear layers."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and plan.family == "vgg":
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    if plan.spec.zero_init_residual:
        # Goyal et al. 2017: each residual block starts as the identity.
        for module in model.modules():
            if isinstance(module, ResidualBlock) and module.has_shortcut and module.last_norm:
                nn.init.zeros_(getattr(module, module.last_norm).weight)


def build_from_plan(plan: p.Plan, device: str | torch.device = "auto") -> nn.Module:
    """A freshly initialised module for the plan, on the resolved device."""
    target = resolve_device(device)
    # Allocate and initialise on the target itself: a CUDA build never holds a CPU copy.
    with target:
        model = Network(_modules(plan.children), plan.taps)
        initialize(model, plan)
    return model


__all__ = ["DropPath", "build_from_plan", "make_module", "resolve_device"]
