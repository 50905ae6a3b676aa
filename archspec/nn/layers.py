"""The torch modules archspec builds that torch does not ship: blocks, shortcuts, SE, drop path."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: subsample by the stride, then append zero channels (parameter-free)."""

    def __init__(self, stride: int, in_channels: int, out_channels: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            # F.pad pads from the last dimension backwards: (W, W, H, H, C-before, C-after).
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra}"


_GATES = {"sigmoid": torch.sigmoid}


class SqueezeExcite(nn.Module):
    """A gate on its input: `x * gate(squeeze(x))`, where `squeeze` is its named children run in order (squeeze-
    and-excitation: global pool, 1x1 reduce, activation, 1x1 expand) and `gate` a function, not a module."""

    def __init__(self, squeeze: dict[str, nn.Module], gate: str = "sigmoid"):
        super().__init__()
        for name, module in squeeze.items():
            self.add_module(name, module)
        self.gate = gate
        self._gate = _GATES[gate]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x
        for module in self.children():
            scale = module(scale)
        return x * self._gate(scale)

    def extra_repr(self) -> str:
        return f"gate={self.gate}"


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of an NCHW map: channels last, normalize, channels first again."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    """Reorder the dimensions of a tensor (channels last and back, around per-pixel linear layers)."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class LayerScale(nn.Module):
    """A learned per-channel scale; the residual block that holds it registers `scale` as its own parameter."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.init = init
        self.scale = nn.Parameter(torch.full((channels, 1, 1), init))


class SamePadAvgPool(nn.Module):
    """timm's average pool with "same" padding: zero-pad (left, right, top, bottom), then a ceil-mode
    pool that excludes no padding of its own, so the padded zeros count in the mean."""

    def __init__(self, kernel: int, stride: int, pad: tuple[int, int, int, int]):
        super().__init__()
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride, 0, ceil_mode=True, count_include_pad=False)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel}, stride={self.stride}, pad={self.pad}"


class DropPath(nn.Module):
    """Stochastic depth: in training, drop the residual branch per sample with probability p."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ResidualBlock(nn.Module):
    """x -> post(F(pre(x)) + shortcut(x)); `plain` blocks have no shortcut, pre-activation ones no post.

    `pre`, `body` and `post` are named modules run in order (a body item may be a whole
    sequence, as RegNet's `f`); the shortcut is registered under `shortcut_name`, before the
    body when `shortcut_first`, so that state_dict keys come in the reference's order.
    """

    def __init__(
        self,
        pre: dict[str, nn.Module],
        body: dict[str, nn.Module],
        shortcut: nn.Module | None,
        post: dict[str, nn.Module],
        *,
        has_shortcut: bool,
        shortcut_name: str = "downsample",
        shortcut_first: bool = False,
        shortcut_from_pre: bool,
        drop_path: float,
        zero_init: tuple[str, ...] | None = None,
    ):
        super().__init__()
        if shortcut_first:
            setattr(self, shortcut_name, shortcut)
        self._scales: dict[str, float] = {}  # the block's own layer scales and their initial values
        for name, module in {**pre, **body}.items():
            if isinstance(module, LayerScale):
                self.register_parameter(name, module.scale)  # the block's own parameter (ConvNeXt's layer_scale)
                self._scales[name] = module.init
            else:
                self.add_module(name, module)
        if not shortcut_first:
            setattr(self, shortcut_name, shortcut)
        for name, module in post.items():
            self.add_module(name, module)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self._pre, self._body, self._post = list(pre), list(body), list(post)
        self.shortcut_name = shortcut_name
        self.has_shortcut = has_shortcut
        self.shortcut_from_pre = shortcut_from_pre
        # The module `zero_init_residual` zeroes: the branch's last norm, or its last conv.
        self.zero_init = zero_init

    def reset_parameters(self) -> None:
        """The block's own parameters (its layer scales) back to their initial values; submodules keep theirs."""
        with torch.no_grad():
            for name, init in self._scales.items():
                getattr(self, name).fill_(init)

    @property
    def shortcut(self) -> nn.Module | None:
        module = getattr(self, self.shortcut_name)
        return module if isinstance(module, nn.Module) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = x
        for name in self._pre:
            pre = getattr(self, name)(pre)
        out = pre
        for name in self._body:
            out = out * getattr(self, name) if name in self._scales else getattr(self, name)(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.has_shortcut:
            source = pre if self.shortcut_from_pre else x
            shortcut = self.shortcut
            # In place, as torchvision does: F's output is not needed for the backward pass,
            # and an out-of-place add costs about 5% of a CPU forward pass of ResNet-50.
            out += source if shortcut is None else shortcut(source)
        for name in self._post:
            out = getattr(self, name)(out)
        return out


class Network(nn.Module):
    """The compiled network: named top-level modules run in order; a features-only network returns the tapped
    outputs."""

    def __init__(self, children: dict[str, nn.Module], taps: tuple[tuple[str, ...], ...] | None):
        super().__init__()
        for name, module in children.items():
            self.add_module(name, module)
        self.taps = taps
        self._order = list(children)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.taps is None:
            for name in self._order:
                x = getattr(self, name)(x)
            return x
        # The plan ends a features-only network at its last tap, so it runs to the end.
        seen: dict[tuple[str, ...], torch.Tensor] = {}
        for name in self._order:
            module = getattr(self, name)
            inner = {tap[1] for tap in self.taps if len(tap) == 2 and tap[0] == name}
            if inner:
                # A tap inside a sequence (VGG's `features`): run its children one by one.
                for child_name, child in module.named_children():
                    x = child(x)
                    if child_name in inner:
                        seen[(name, child_name)] = x
            else:
                x = module(x)
            if (name,) in self.taps:
                seen[(name,)] = x
        return [seen[tap] for tap in self.taps]
