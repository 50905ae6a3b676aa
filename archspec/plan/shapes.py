"""Shape arithmetic: output sizes of convs and pools, and the rounding rules widths follow."""

from __future__ import annotations

from archspec.plan.ops import Size2


def as_size(size: int | list[int] | tuple[int, int]) -> Size2:
    """`224` -> (224, 224); `[224, 320]` -> (224, 320)."""
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def conv_out(n: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Pooling output length, torch's rule: in ceil mode the last window must start inside the input."""
    out = (n + 2 * padding - (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of `divisor`, at least `divisor` (the SE convention of timm and torchvision)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


def round_width(value: float, divisor: int) -> int:
    """torchvision's `_make_divisible`: the nearest multiple of `divisor` (at least `divisor`), never more than
    10% below `value` (the widths of its MobileNets, EfficientNets and RegNets)."""
    rounded = make_divisible(value, divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
