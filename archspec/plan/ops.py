"""The plan's vocabulary: one frozen record per module the builder makes, and the plan itself.

Every record carries the widths and spatial sizes it was resolved with, so the
builder (`archspec.nn.builder`), the analytic counter (`archspec.counting`) and
the state_dict layout (`archspec.plan.tensors`) read the same facts and never
re-derive them. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archspec.lang.schema import Spec, Stage

Size2 = tuple[int, int]


@dataclass(frozen=True)
class Conv:
    in_channels: int
    out_channels: int
    kernel: int
    in_size: Size2
    out_size: Size2
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = False


@dataclass(frozen=True)
class Norm:
    kind: str  # "batch" | "group"
    channels: int
    size: Size2
    groups: int = 0


@dataclass(frozen=True)
class Act:
    kind: str  # "relu" | "relu6" | "silu" | "gelu"
    # False where the activation would otherwise overwrite a tensor its caller still needs
    # (a pre-activation block without a norm reads its own input first).
    inplace: bool = True


@dataclass(frozen=True)
class MaxPool:
    kernel: int
    stride: int
    padding: int
    channels: int
    in_size: Size2
    out_size: Size2


@dataclass(frozen=True)
class AvgPool:
    """ResNet-D's shortcut pool: 2x2, ceil mode, padding excluded from the mean.

    `pad` (left, right, top, bottom) zero-pads the input first: timm's "same" pool in a
    dilated stage, where the zeros count in the mean.
    """

    kernel: int
    stride: int
    channels: int
    in_size: Size2
    out_size: Size2
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(frozen=True)
class AdaptivePool:
    kind: str  # "avg" | "max"
    channels: int
    in_size: Size2
    out_size: Size2


@dataclass(frozen=True)
class Identity:
    pass


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class Dropout:
    p: float


@dataclass(frozen=True)
class ZeroPadShortcut:
    """Option A: subsample by the stride, append zero channels up to the output width."""

    stride: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class SqueezeExcite:
    """A gate on `channels` maps of `size`: `x * gate(squeeze(x))`, where `squeeze` is its named primitive ops run
    in order (global average pool, 1x1 conv to the reduced width, activation, 1x1 conv back) and `gate` the
    activation that turns their output into per-channel scales (sigmoid)."""

    channels: int
    size: Size2
    items: Items
    gate: str = "sigmoid"

    @property
    def reduced(self) -> int:
        """The width inside the squeeze path: the output width of its first conv."""
        return next(op.out_channels for _, op in self.items if isinstance(op, Conv))


@dataclass(frozen=True)
class LayerNorm:
    """Layer norm over the channels of `channels` maps of `size`: channels-first (a permute on each side, as
    torchvision's LayerNorm2d) or on a channels-last map (after a `Permute`), with an affine scale and shift."""

    channels: int
    size: Size2
    channels_last: bool = False
    eps: float = 1e-6


@dataclass(frozen=True)
class Permute:
    """Reorder a map's dimensions (`(0, 2, 3, 1)`: channels last; `(0, 3, 1, 2)`: channels first)."""

    dims: tuple[int, ...]


@dataclass(frozen=True)
class PixelLinear:
    """A fully connected layer applied at every pixel of a channels-last map of `size` (a 1x1 conv as a linear)."""

    in_features: int
    out_features: int
    size: Size2
    bias: bool = True


@dataclass(frozen=True)
class LayerScale:
    """A learned per-channel scale (CaiT, ConvNeXt), initialised to `init`; the block that holds it owns the
    parameter itself (its state_dict key is the block's path and the name it is registered under)."""

    channels: int
    size: Size2
    init: float


@dataclass(frozen=True)
class Sequence:
    """Named ops run in order (an `nn.Sequential`)."""

    items: Items


@dataclass(frozen=True)
class Residual:
    """One block: `post(body(pre(x)) + shortcut(x))`.

    `pre` is a pre-activation unit (its output also feeds a projection shortcut when
    `shortcut_from_pre`); `body` is the residual function F; `shortcut_name` is the
    attribute the shortcut is registered under (`downsample` in torchvision's ResNets,
    `proj` in its RegNets), and `shortcut_first` registers it before the body, as
    torchvision's RegNet does, so that state_dict keys come in the same order.
    `zero_init` is the path of the module whose weight `zero_init_residual` zeroes.
    """

    kind: str
    in_channels: int
    out_channels: int
    stride: int
    in_size: Size2
    out_size: Size2
    # The defaults (keyword-only, so that the fields keep their order) are those of most blocks: no pre-activation
    # unit, nothing after the sum, torchvision's ResNet naming of the shortcut.
    pre: Items = field(default=(), kw_only=True)
    body: Items
    shortcut: Sequence | ZeroPadShortcut | None
    shortcut_kind: str  # "identity" | "zero_pad" | "projection" | "none"
    shortcut_name: str = field(default="downsample", kw_only=True)
    shortcut_first: bool = field(default=False, kw_only=True)
    shortcut_from_pre: bool = field(default=False, kw_only=True)
    post: Items = field(default=(), kw_only=True)
    drop_path: float
    zero_init: tuple[str, ...] | None


Op = (
    Conv
    | Norm
    | Act
    | MaxPool
    | AvgPool
    | AdaptivePool
    | Identity
    | Flatten
    | Linear
    | Dropout
    | ZeroPadShortcut
    | SqueezeExcite
    | LayerNorm
    | Permute
    | PixelLinear
    | LayerScale
    | Sequence
    | Residual
)
Items = tuple[tuple[str, Op], ...]
OP_TYPES: tuple[type, ...] = Op.__args__


def children(op: Op) -> Items:
    """The named sub-ops of `op`, in the order the built module registers them."""
    if isinstance(op, Sequence | SqueezeExcite):
        return op.items
    if isinstance(op, Residual):
        shortcut: Items = ((op.shortcut_name, op.shortcut),) if op.shortcut is not None else ()
        if op.shortcut_first:
            return shortcut + op.pre + op.body + op.post
        return op.pre + op.body + shortcut + op.post
    return ()


@dataclass(frozen=True)
class Section:
    """A row of the report: the stem, one stage, or the head, with the ops that belong to it."""

    name: str
    ops: Items
    blocks: int = 0
    block: str = ""
    shortcut: str = ""
    in_channels: int = 0
    out_channels: int = 0
    stride: int = 1
    out_size: Size2 = (0, 0)


@dataclass(frozen=True)
class Plan:
    """A network resolved down to its layers.

    `spec` is the validated spec; `stages` its stages after any generator has been expanded
    (what every consumer of the plan reads); `children` the top-level modules in order;
    `taps` the module paths a features-only network returns.
    """

    spec: Spec
    stages: tuple[Stage, ...]
    family: str  # the module layout: "resnet" | "vgg" | "regnet"
    input_channels: int
    input_size: Size2
    children: Items
    sections: tuple[Section, ...]
    taps: tuple[tuple[str, ...], ...] | None
    output_shapes: tuple[tuple[int, ...], ...] = field(default=())
