"""The spec language: Pydantic models for one architecture description.

Every field has a description (they become the JSON Schema that editors use),
closed choices are Literals, unknown keys are errors, and values are strict:
YAML's `yes`/`on` never turns into 1 and `64.0` never into 64.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

BlockType = Literal["basic", "bottleneck", "plain", "vgg"]
ShortcutOption = Literal["A", "B", "C"]
PositiveInt = Annotated[int, Field(ge=1)]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value):
    """One positive integer, or [height, width]."""
    if _is_int(value) or (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
        if min(value if isinstance(value, list) else [value]) < 1:
            raise ValueError("sizes must be at least 1")
        return value
    raise ValueError("expected a size: one positive integer, or [height, width]")


Size = Annotated[
    Union[int, list[int]],
    PlainValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
            ]
        }
    ),
]


class Model(BaseModel):
    """Policy shared by every part of a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Input(Model):
    """The input image the network is designed for."""

    channels: PositiveInt = Field(3, description="Input channels (3 for RGB).")
    size: Size = Field(224, description="Input height and width: one number for a square, or [height, width].")


class Stem(Model):
    """The layers before the first stage."""

    type: Literal["imagenet", "cifar", "deep", "none"] = Field(
        "imagenet",
        description=(
            "imagenet: 7x7/2 conv, norm, activation, 3x3/2 max pool. cifar: 3x3/1 conv, norm, activation. "
            "deep: three 3x3 convs, the first with stride 2 (ResNet-C), then norm, activation, 3x3/2 max pool. "
            "none: no stem."
        ),
    )
    width: Optional[PositiveInt] = Field(None, description="Output channels of the stem (default 64; 16 for cifar).")
    inner_width: Optional[PositiveInt] = Field(None, description="Width of the first two convs of a deep stem (default width / 2).")
    pool: Optional[bool] = Field(None, description="Close the stem with a 3x3/2 max pool (default: true for imagenet and deep, false for cifar).")


class SqueezeExcite(Model):
    """Squeeze-and-excitation after the last conv of each residual block."""

    reduction: PositiveInt = Field(16, description="Channel reduction ratio of the bottleneck inside the SE unit.")
    divisor: PositiveInt = Field(8, description="The reduced width is rounded to a multiple of this (at least this).")


class Stage(Model):
    """A run of blocks at one resolution (the paper's conv2_x ... conv5_x)."""

    depth: Annotated[int, Field(ge=1, le=10_000)] = Field(description="Number of blocks (for vgg: number of 3x3 convs).")
    width: PositiveInt = Field(description="Base width of the blocks; a bottleneck outputs expansion x width.")
    stride: Optional[Literal[1, 2]] = Field(
        None, description="Stride of the stage's first block (default 1 for the first stage, 2 after; vgg: the closing max pool, default 2)."
    )
    block: Optional[BlockType] = Field(None, description="Override the spec's block type for this stage.")
    shortcut: Optional[ShortcutOption] = Field(None, description="Override the spec's shortcut option for this stage.")


class Head(Model):
    """What follows the last stage."""

    num_classes: PositiveInt = Field(1000, description="Outputs of the final fully connected layer.")
    hidden: list[PositiveInt] = Field(default_factory=list, description="Widths of fully connected layers before the classifier (VGG: [4096, 4096]).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout probability after each hidden fully connected layer (VGG: 0.5); with no hidden layer, before the classifier.")
    pool: Literal["avg", "max", "none"] = Field("avg", description="Adaptive pooling before the fully connected layers; none flattens the feature map as it is.")
    pool_size: Size = Field(1, description="Output size of the adaptive pool (VGG: 7).")
    features: Optional[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]] = Field(
        None,
        description="Features-only backbone: return the outputs of these stages (1 = first stage, 0 = stem) instead of class scores.",
    )


class Spec(Model):
    """One network: stem, stages of blocks, head."""

    name: str = Field("custom", min_length=1, description="Name shown in reports.")
    description: str = Field("", description="Free text.")
    extends: Optional[str] = Field(None, description="A stock spec name or a path (relative to this file) whose values this spec overrides.")
    input: Input = Field(default_factory=Input, description="The input the network is designed for.")
    stem: Stem = Field(default_factory=Stem, description="Layers before the first stage.")
    block: BlockType = Field(
        "basic",
        description="basic: 3x3, 3x3 with a shortcut. bottleneck: 1x1, 3x3, 1x1 with a shortcut. plain: basic without shortcut. vgg: 3x3 convs with bias, closed by a 2x2 max pool.",
    )
    preact: bool = Field(False, description="Pre-activation residual blocks (norm, activation, conv; He et al. 2016).")
    shortcut: ShortcutOption = Field(
        "B", description="A: zero-padded identity. B: projection where the shape changes. C: projection on every block."
    )
    stride_in: Literal["1x1", "3x3"] = Field("3x3", description="Which conv of a bottleneck carries its stride (paper: 1x1; torchvision v1.5: 3x3).")
    groups: PositiveInt = Field(1, description="Groups of a bottleneck's 3x3 conv (ResNeXt cardinality).")
    width_per_group: PositiveInt = Field(64, description="Bottleneck inner width = width * width_per_group / 64 * groups.")
    expansion: Optional[PositiveInt] = Field(None, description="Output width / base width of a block (default 4 for bottleneck, 1 otherwise).")
    avg_down: bool = Field(False, description="Projection shortcuts downsample with a 2x2 average pool before a stride-1 1x1 conv (ResNet-D).")
    se: Optional[SqueezeExcite] = Field(None, description="Squeeze-and-excitation in every residual block.")
    drop_path: float = Field(0.0, ge=0.0, lt=1.0, description="Stochastic depth: the last block's drop rate; earlier blocks' rates grow linearly from 0.")
    output_stride: Optional[Literal[8, 16, 32]] = Field(None, description="Replace stage strides by dilation once the network's stride reaches this.")
    norm: Literal["batch", "group", "none"] = Field("batch", description="Normalization after each conv.")
    norm_groups: PositiveInt = Field(32, description="Groups of group normalization.")
    activation: Literal["relu", "silu", "gelu"] = Field("relu", description="Activation function.")
    stages: Annotated[list[Stage], Field(min_length=1)] = Field(description="The stages, in order.")
    head: Head = Field(default_factory=Head, description="Pooling and fully connected layers after the last stage.")
    zero_init_residual: bool = Field(False, description="Start each residual block's last norm at zero, so every block begins as the identity.")


def cross_field_problems(spec: Spec) -> list[tuple[tuple, str]]:
    """Rules that span fields, as (field path, message) pairs.

    They live outside a Pydantic `model_validator` on purpose: an error raised there is
    located at the whole model, while these name the field at fault, so `archspec validate`
    can point at its line.
    """
    problems: list[tuple[tuple, str]] = []
    kinds = [stage.block or spec.block for stage in spec.stages]
    if "vgg" in kinds and len(set(kinds)) > 1:
        i = next(i for i, kind in enumerate(kinds) if kind != kinds[0])
        path = ("stages", i, "block") if spec.stages[i].block else ("block",)
        problems.append((path, "vgg stages cannot be mixed with residual or plain stages in one network"))
    if "vgg" in kinds:
        for name in ("se", "avg_down", "drop_path", "output_stride", "preact", "zero_init_residual"):
            if getattr(spec, name):
                problems.append(((name,), f"{name} shapes residual blocks; a vgg network has none"))
    elif spec.preact and set(kinds) & {"plain"}:
        problems.append((("preact",), "preact applies to basic and bottleneck blocks, not plain"))
    if set(kinds) - {"bottleneck"}:
        for name, default in (("groups", 1), ("width_per_group", 64)):
            if getattr(spec, name) != default:
                problems.append(((name,), f"{name} shapes bottleneck blocks only; this spec also has {', '.join(sorted(set(kinds) - {'bottleneck'}))} blocks"))
    if spec.stem.inner_width is not None and spec.stem.type != "deep":
        problems.append((("stem", "inner_width"), "inner_width applies to the deep stem only"))
    if spec.stem.type == "none":
        for name in ("width", "pool"):
            if getattr(spec.stem, name) is not None:
                problems.append((("stem", name), f"a stem of type none takes no {name}"))
    return problems
