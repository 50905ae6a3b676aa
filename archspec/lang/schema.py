"""The spec language: Pydantic models for one architecture description.

Every field has a description (they become the JSON Schema that editors use),
closed choices are Literals, unknown keys are errors, and values are strict:
YAML's `yes`/`on` never turns into 1 and `64.0` never into 64.

`block:` is a block kind's name or its parameters mapping (`archspec.lang.blocks`). The
knobs several kinds share (`KNOBS`) may also be written flat on the network and overridden on
any stage; a stage's value wins, the network's is the default. Rules that span fields (which
block kinds a knob shapes, what a stem takes) belong to the plan's registry of blocks and stems
(`archspec.plan`), where adding a block kind adds its rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PlainValidator, Tag, WithJsonSchema

from archspec.lang.blocks import BLOCK_NAMES as BLOCK_NAMES
from archspec.lang.blocks import BLOCK_PARAMS, SHARED_KNOBS, BlockField
from archspec.lang.blocks import BlockParams as BlockParams
from archspec.lang.blocks import BlockType as BlockType
from archspec.lang.fields import MAX_SIZE as MAX_SIZE
from archspec.lang.fields import MAX_WIDTH as MAX_WIDTH
from archspec.lang.fields import Activation as Activation
from archspec.lang.fields import ExactInt, PositiveInt, Ratio, SEField
from archspec.lang.fields import Model as Model
from archspec.lang.fields import ShortcutOption as ShortcutOption
from archspec.lang.fields import SqueezeExcite as SqueezeExcite
from archspec.lang.fields import StrideIn as StrideIn

# The knobs written flat on the network and on a stage (a kind's own knobs go in its `block:` mapping).
KNOBS = SHARED_KNOBS
StemType = Literal["imagenet", "cifar", "deep", "simple", "patchify", "none"]
# The stage generators `stages:` may name instead of a list; see `archspec.plan.generators`.
GENERATORS = ("regnet",)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: object) -> int | list[int]:
    """One positive integer, or [height, width]."""
    if isinstance(value, int) and not isinstance(value, bool):
        sizes = [value]
    elif isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value):
        sizes = [int(v) for v in value]
    else:
        raise ValueError("expected a size: one positive integer, or [height, width]")
    if min(sizes) < 1:
        raise ValueError("sizes must be at least 1")
    if max(sizes) > MAX_SIZE:
        raise ValueError(f"sizes must be at most {MAX_SIZE}")
    return value if isinstance(value, int) else sizes


Size = Annotated[
    int | list[int],
    PlainValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                    "minItems": 2,
                    "maxItems": 2,
                },
            ]
        }
    ),
]


class Input(Model):
    """The input image the network is designed for."""

    channels: PositiveInt = Field(default=3, description="Input channels (3 for RGB).")
    size: Size = Field(default=224, description="Input height and width: one number for a square, or [height, width].")


class Stem(Model):
    """The layers before the first stage."""

    type: StemType = Field(
        default="imagenet",
        description=(
            "imagenet: 7x7/2 conv, norm, activation, 3x3/2 max pool. cifar: 3x3/1 conv, norm, activation. "
            "deep: three 3x3 convs, the first with stride 2 (ResNet-C), then norm, activation, 3x3/2 max pool. "
            "simple: 3x3/2 conv, norm, activation (RegNet's stem). patchify: a patch x patch conv with stride "
            "patch and bias, then a layer norm over channels (ConvNeXt's stem). none: no stem."
        ),
    )
    width: PositiveInt | None = Field(
        default=None, description="Output channels of the stem (default 64; 16 for cifar; 32 for simple)."
    )
    inner_width: PositiveInt | None = Field(
        default=None, description="Width of the first two convs of a deep stem (default width / 2)."
    )
    pool: bool | None = Field(
        default=None,
        description=(
            "Close the stem with a 3x3/2 max pool (default: true for imagenet and deep, false for cifar and simple)."
        ),
    )
    patch: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None, description="Kernel and stride of a patchify stem's conv (default 4)."
    )
    norm: Literal["layer", "batch"] | None = Field(
        default=None,
        description="The norm after a patchify stem's conv: layer (ConvNeXt, the default) or batch (a ResNet with "
        "a patchify stem).",
    )


class Stage(Model):
    """A run of blocks at one resolution (the paper's conv2_x ... conv5_x).

    Any field that shapes a block may be set here too; it overrides the network's value for this stage only.
    """

    depth: Annotated[int, Field(ge=1, le=10_000)] = Field(
        description="Number of blocks (for vgg: number of 3x3 convs)."
    )
    width: PositiveInt = Field(description="Base width of the blocks; a bottleneck outputs expansion x width.")
    stride: Annotated[Literal[1, 2] | None, ExactInt] = Field(
        None,
        description="Stride of the stage's first block (default 1 for the first stage, 2 after; vgg: the closing "
        "max pool, default 2).",
    )
    block: BlockField | None = Field(
        None,
        description="This stage's block kind: its name, or a mapping of its `type` and parameters (default: the "
        "network's `block`).",
    )
    shortcut: ShortcutOption | None = Field(None, description="This stage's shortcut option (default: the network's).")
    groups: PositiveInt | None = Field(None, description="This stage's `groups` (default: the network's).")
    group_width: PositiveInt | None = Field(None, description="This stage's `group_width` (default: the network's).")
    width_per_group: PositiveInt | None = Field(
        None, description="This stage's `width_per_group` (default: the network's)."
    )
    bottleneck_ratio: Ratio | None = Field(
        None, description="This stage's `bottleneck_ratio` (default: the network's)."
    )
    expansion: PositiveInt | None = Field(None, description="This stage's `expansion` (default: the network's).")
    stride_in: StrideIn | None = Field(None, description="This stage's `stride_in` (default: the network's).")
    avg_down: bool | None = Field(None, description="This stage's `avg_down` (default: the network's).")
    se: SEField = Field(
        None, description="This stage's squeeze-and-excitation (default: the network's; false for none)."
    )
    preact: bool | None = Field(None, description="This stage's `preact` (default: the network's).")
    activation: Activation | None = Field(None, description="This stage's activation (default: the network's).")


class RegNetRule(Model):
    """RegNet's quantized linear rule (Radosavovic et al. 2020): five numbers give every stage's depth and width.

    Block j (0-based) gets width w0 + wa x j, quantized to w0 x wm^round(log((w0 + wa x j) / w0) / log(wm)) and
    rounded to a multiple of 8; blocks of equal width form a stage, every stage has stride 2, and widths are
    adjusted so that each stage's inner width divides by its group width (torchvision's arithmetic).
    """

    depth: Annotated[int, Field(ge=1, le=10_000)] = Field(description="Total number of blocks (the paper's d).")
    w0: Annotated[int, Field(ge=8, le=1 << 20, multiple_of=8)] = Field(
        description="Width of the first block (w0), a multiple of 8."
    )
    wa: Annotated[float, Field(ge=0, le=1 << 20)] = Field(description="Width slope per block (wa).")
    wm: Annotated[float, Field(gt=1, le=1 << 10)] = Field(
        description="Width multiplier between stages (wm), greater than 1."
    )
    group_width: PositiveInt = Field(description="Channels per group of the 3x3 convs (g).")
    bottleneck_ratio: Ratio = Field(1.0, description="Inner width = width / bottleneck_ratio (b).")
    se_ratio: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None,
        description="Squeeze-and-excitation with this ratio of each block's input width (RegNetY: 0.25); none for "
        "RegNetX.",
    )
    block: BlockType = Field("regnet", description="The block type of the generated stages.")
    arithmetic: Literal["torchvision", "pycls"] = Field(
        "torchvision",
        description=(
            "How widths are computed and fitted to group widths: torchvision's (float32, halves rounded up; its "
            "RegNets load) "
            "or pycls's, the paper's code (float64, halves rounded to even; the paper's published models)."
        ),
    )


class StageGenerators(Model):
    """Stages written as a generator instead of a list; `archspec show` prints the stages it expands to."""

    regnet: RegNetRule = Field(description="RegNet's quantized linear rule.")


def _stages_tag(value: Any) -> str:
    # Called on the input when validating and on the model when serializing.
    if isinstance(value, StageGenerators) or (isinstance(value, dict) and any(key in value for key in GENERATORS)):
        return "generator"
    return "list"


StagesField = Annotated[
    Annotated[Annotated[list[Stage], Field(min_length=1)], Tag("list")] | Annotated[StageGenerators, Tag("generator")],
    Discriminator(_stages_tag),
]


class Head(Model):
    """What follows the last stage."""

    num_classes: PositiveInt = Field(default=1000, description="Outputs of the final fully connected layer.")
    hidden: list[PositiveInt] = Field(
        default_factory=list, description="Widths of fully connected layers before the classifier (VGG: [4096, 4096])."
    )
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description=(
            "Dropout probability after each hidden fully connected layer (VGG: 0.5); "
            "with no hidden layer, before the classifier."
        ),
    )
    conv: PositiveInt | None = Field(
        default=None,
        description="Width of a 1x1 conv, norm and activation before the pool (MobileNetV2 and EfficientNet: 1280); "
        "none by default.",
    )
    pool: Literal["avg", "max", "none"] = Field(
        default="avg",
        description="Adaptive pooling before the fully connected layers; none flattens the feature map as it is.",
    )
    pool_size: Size = Field(default=1, description="Output size of the adaptive pool (VGG: 7).")
    features: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = Field(
        default=None,
        description="Features-only backbone: return the outputs of these stages (1 = first stage, 0 = stem) "
        "instead of class scores.",
    )


class Scale(Model):
    """Width and depth multipliers over the stages as written (MobileNet's width multiplier, EfficientNet's compound
    scaling, Tan and Le 2019).

    Every width (the stem's, each stage's, and the head's conv, which only grows) is multiplied by `width` and
    rounded to the nearest multiple of `divisor`, never more than 10% below the product (torchvision's
    `_make_divisible`); each stage's depth is multiplied by `depth` and rounded up.
    """

    width: Annotated[float, Field(gt=0, le=64)] = Field(1.0, description="Width multiplier.")
    depth: Annotated[float, Field(gt=0, le=64)] = Field(1.0, description="Depth multiplier.")
    divisor: PositiveInt = Field(8, description="Scaled widths are rounded to a multiple of this (at least this).")


class Spec(Model):
    """One network: stem, stages of blocks, head."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        "custom", description="Name shown in reports (one line: no control characters)."
    )
    description: str = Field("", max_length=10_000, description="Free text.")
    extends: str | None = Field(
        None, description="A stock spec name or a path (relative to this file) whose values this spec overrides."
    )
    input: Input = Field(default_factory=Input, description="The input the network is designed for.")
    stem: Stem = Field(default_factory=Stem, description="Layers before the first stage.")
    block: BlockField = Field(
        "basic",
        description="The block kind: its name (`bottleneck`) or a mapping of its `type` and parameters "
        "(`{type: bottleneck, groups: 32}`). " + " ".join(model.__doc__ or "" for model in BLOCK_PARAMS.values()),
    )
    preact: bool = Field(False, description="Pre-activation residual blocks (norm, activation, conv; He et al. 2016).")
    shortcut: ShortcutOption = Field(
        "B", description="A: zero-padded identity. B: projection where the shape changes. C: projection on every block."
    )
    stride_in: StrideIn = Field(
        "3x3", description="Which conv of a bottleneck carries its stride (paper: 1x1; torchvision v1.5: 3x3)."
    )
    groups: PositiveInt | None = Field(
        None,
        description="Groups of the 3x3 conv of bottleneck and regnet blocks (ResNeXt cardinality; default 1). "
        "Exclusive with group_width.",
    )
    group_width: PositiveInt | None = Field(
        None,
        description="Channels per group of that 3x3 conv (RegNet's g): groups = inner width / group_width. "
        "Exclusive with groups.",
    )
    width_per_group: PositiveInt = Field(
        64, description="Bottleneck inner width = width * width_per_group / 64 * groups."
    )
    bottleneck_ratio: Ratio = Field(
        1.0, description="Inner width of a regnet block = width / bottleneck_ratio (RegNet's b)."
    )
    expansion: PositiveInt | None = Field(
        None, description="Output width / base width of a block (default 4 for bottleneck, 1 otherwise)."
    )
    avg_down: bool = Field(
        False,
        description="Projection shortcuts downsample with a 2x2 average pool before a stride-1 1x1 conv (ResNet-D).",
    )
    se: SEField = Field(None, description="Squeeze-and-excitation in every residual block (null or false: none).")
    drop_path: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Stochastic depth: the last block's drop rate; earlier blocks' rates grow linearly from 0.",
    )
    output_stride: Annotated[Literal[8, 16, 32] | None, ExactInt] = Field(
        None, description="Replace stage strides by dilation once the network's stride reaches this."
    )
    norm: Literal["batch", "group", "none"] = Field("batch", description="Normalization after each conv.")
    norm_groups: PositiveInt = Field(32, description="Groups of group normalization.")
    activation: Activation = Field("relu", description="Activation function.")
    stages: StagesField = Field(description="The stages, in order: a list, or a generator such as `{regnet: {...}}`.")
    scale: Scale | None = Field(
        None,
        description="Width and depth multipliers applied to the stem, the stages and the head's conv "
        "(`{width: 1.1, depth: 1.2}`: EfficientNet-B2 over B0).",
    )
    head: Head = Field(default_factory=Head, description="Pooling and fully connected layers after the last stage.")
    zero_init_residual: bool = Field(
        False,
        description=(
            "Start each residual branch at zero (its last norm, or its last conv where no norm follows it), "
            "so every block begins as the identity (Goyal et al. 2017)."
        ),
    )
