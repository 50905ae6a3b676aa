"""Plan -> torch module, on the device the user asks for.

One handler per op type (`HANDLERS`); an op type without one is an error at its first use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError
from archspec.nn.layers import (
    DropPath,
    LayerNorm2d,
    LayerScale,
    Network,
    Permute,
    ResidualBlock,
    SamePadAvgPool,
    SqueezeExcite,
    ZeroPadShortcut,
)
from archspec.nn.materialize import materialize
from archspec.plan import ops as p
from archspec.plan.layouts import init_laws

_ACTIVATIONS: dict[str, Callable[[bool], nn.Module]] = {
    "relu": lambda inplace: nn.ReLU(inplace=inplace),
    "relu6": lambda inplace: nn.ReLU6(inplace=inplace),
    "silu": lambda inplace: nn.SiLU(inplace=inplace),
    "gelu": lambda inplace: nn.GELU(),
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` is CUDA when there is one, else the CPU; asking for CUDA where there is none is a SpecError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(
            Problem(Mark("--device"), "device", f"unknown device {name!r}; use auto, cpu or cuda")
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            Problem(
                Mark("--device"),
                "device",
                "CUDA was asked for, but torch sees no CUDA device here; use --device cpu or auto",
            )
        )
    if resolved.type not in ("cpu", "cuda"):
        raise SpecError(Problem(Mark("--device"), "device", f"unsupported device {name!r}; use auto, cpu or cuda"))
    return resolved


def _avg_pool(op: p.AvgPool) -> nn.Module:
    if any(op.pad):
        return SamePadAvgPool(op.kernel, op.stride, op.pad)
    return nn.AvgPool2d(op.kernel, op.stride, ceil_mode=True, count_include_pad=False)


def _residual(op: p.Residual) -> nn.Module:
    return ResidualBlock(
        _modules(op.pre),
        _modules(op.body),
        make_module(op.shortcut) if op.shortcut is not None else None,
        _modules(op.post),
        has_shortcut=op.shortcut_kind != "none",
        shortcut_name=op.shortcut_name,
        shortcut_first=op.shortcut_first,
        shortcut_from_pre=op.shortcut_from_pre,
        drop_path=op.drop_path,
        zero_init=op.zero_init,
    )


HANDLERS: dict[type, Callable[..., nn.Module]] = {
    p.Conv: lambda op: nn.Conv2d(
        op.in_channels, op.out_channels, op.kernel, op.stride, op.padding, op.dilation, op.groups, op.bias
    ),
    p.Norm: lambda op: nn.BatchNorm2d(op.channels) if op.kind == "batch" else nn.GroupNorm(op.groups, op.channels),
    p.Act: lambda op: _ACTIVATIONS[op.kind](op.inplace),
    p.MaxPool: lambda op: nn.MaxPool2d(op.kernel, op.stride, op.padding),
    p.AvgPool: _avg_pool,
    p.AdaptivePool: lambda op: (
        nn.AdaptiveAvgPool2d(op.out_size) if op.kind == "avg" else nn.AdaptiveMaxPool2d(op.out_size)
    ),
    p.Identity: lambda op: nn.Identity(),
    p.Flatten: lambda op: nn.Flatten(1),
    p.Linear: lambda op: nn.Linear(op.in_features, op.out_features, op.bias),
    p.Dropout: lambda op: nn.Dropout(op.p),
    p.ZeroPadShortcut: lambda op: ZeroPadShortcut(op.stride, op.in_channels, op.out_channels),
    p.SqueezeExcite: lambda op: SqueezeExcite(_modules(op.items), op.gate),
    p.LayerNorm: lambda op: nn.LayerNorm(op.channels, op.eps) if op.channels_last else LayerNorm2d(op.channels, op.eps),
    p.Permute: lambda op: Permute(op.dims),
    p.PixelLinear: lambda op: nn.Linear(op.in_features, op.out_features, op.bias),
    p.LayerScale: lambda op: LayerScale(op.channels, op.init),
    p.Sequence: lambda op: nn.Sequential(_modules(op.items)),
    p.Residual: _residual,
}


def make_module(op: p.Op) -> nn.Module:
    """One torch module for one op of the plan."""
    handler = HANDLERS.get(type(op))
    if handler is None:
        raise TypeError(f"the builder has no module for {type(op).__name__}")
    return handler(op)


def _modules(items: Iterable[tuple[str, p.Op]]) -> OrderedDict[str, nn.Module]:
    return OrderedDict((name, make_module(op)) for name, op in items)


def build_from_plan(plan: p.Plan, device: str | torch.device = "auto") -> nn.Module:
    """A freshly initialised module for the plan, on the resolved device; on "meta", the structure only
    (tensors with shapes and no storage, not initialised)."""
    if str(device) == "meta":
        with torch.device("meta"):
            return Network(_modules(plan.children), plan.taps)
    target = resolve_device(device)
    # Built without storage, then allocated on the target itself (a CUDA build never holds a CPU copy) and
    # initialised in one pass, each tensor once, with the laws of the families its modules come from.
    with torch.device("meta"):
        model = Network(_modules(plan.children), plan.taps)
    law, exceptions = init_laws(plan)
    materialize(model, target, law=law, exceptions=exceptions, zero_init_residual=plan.spec.zero_init_residual)
    return model


__all__ = ["HANDLERS", "DropPath", "build_from_plan", "make_module", "resolve_device"]
