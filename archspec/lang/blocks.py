"""The parameters of each block kind: one Pydantic model per kind, and the `block:` union they form.

A block kind's model lists the knobs that shape it, each with its description and default. `block:`
takes a kind's name (`block: bottleneck`) or a mapping tagged by `type` (`block: {type: bottleneck,
groups: 32}`); the mapping's fields are that kind's model. The knobs that many kinds share
(`shortcut`, `groups`, `se`, `activation`, ...) may also be written flat on the network and on a
stage, as the specs always could (`SHARED_KNOBS`); a kind's own knobs go in its mapping.

The planner's registry (`archspec.plan.blocks`) pairs each model with its planner; the spec's
`BlockType`, `KNOBS`, the JSON Schema and docs/spec.md's tables are read off `BLOCK_PARAMS` here.
Adding a kind adds its model to this file and to `BLOCK_PARAMS`.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from archspec.lang.fields import Activation, ExactInt, Model, PositiveInt, Ratio, SEField, ShortcutOption, StrideIn

# The knobs shared by several kinds, written flat on the network (with these defaults) or on a stage.
_SHORTCUT: Any = Field(
    "B", description="A: zero-padded identity. B: projection where the shape changes. C: projection on every block."
)
_GROUPS: Any = Field(
    None,
    description="Groups of the 3x3 conv (ResNeXt cardinality; default 1). Exclusive with group_width.",
)
_GROUP_WIDTH: Any = Field(
    None,
    description="Channels per group of the 3x3 conv (RegNet's g): groups = inner width / group_width. "
    "Exclusive with groups.",
)
_STRIDE_IN: Any = Field("3x3", description="Which conv carries the block's stride (paper: 1x1; torchvision v1.5: 3x3).")
_EXPANSION: Any = Field(
    None, description="Output width / base width of a block (default 4 for bottleneck, 1 otherwise)."
)
_AVG_DOWN: Any = Field(
    False, description="Projection shortcuts downsample with a 2x2 average pool before a stride-1 1x1 conv (ResNet-D)."
)
_SE: Any = Field(None, description="Squeeze-and-excitation in every block (null or false: none).")
_PREACT: Any = Field(False, description="Pre-activation residual blocks (norm, activation, conv; He et al. 2016).")
_ACTIVATION: Any = Field("relu", description="Activation function.")


class BlockParams(Model):
    """What every block kind's parameters model shares: its `type` tag."""

    type: str

    @classmethod
    def kind_name(cls) -> str:
        default = cls.model_fields["type"].default
        assert isinstance(default, str), cls
        return default

    @classmethod
    def knobs(cls) -> tuple[str, ...]:
        """The knobs that shape this kind, in the model's order."""
        return tuple(name for name in cls.model_fields if name != "type")


class BasicParams(BlockParams):
    """basic: 3x3, 3x3 with a shortcut (ResNet-18/34, the CIFAR nets)."""

    type: Literal["basic"] = "basic"
    shortcut: ShortcutOption = _SHORTCUT
    expansion: PositiveInt | None = _EXPANSION
    avg_down: bool = _AVG_DOWN
    se: SEField = _SE
    preact: bool = _PREACT
    activation: Activation = _ACTIVATION


class _GroupedBottleneckParams(BlockParams):
    """What the residual bottlenecks with a grouped 3x3 conv share (bottleneck, regnet): their first knobs."""

    shortcut: ShortcutOption = _SHORTCUT
    groups: PositiveInt | None = _GROUPS
    group_width: PositiveInt | None = _GROUP_WIDTH


class BottleneckParams(_GroupedBottleneckParams):
    """bottleneck: 1x1 reduce, 3x3, 1x1 restore with a shortcut (ResNet-50 and deeper, ResNeXt, wide ResNets)."""

    type: Literal["bottleneck"] = "bottleneck"
    width_per_group: PositiveInt = Field(64, description="Inner width = width * width_per_group / 64 * groups.")
    expansion: PositiveInt | None = _EXPANSION
    stride_in: StrideIn = _STRIDE_IN
    avg_down: bool = _AVG_DOWN
    se: SEField = _SE
    preact: bool = _PREACT
    activation: Activation = _ACTIVATION


class PlainParams(BlockParams):
    """plain: basic without the shortcut (the paper's plain baselines)."""

    type: Literal["plain"] = "plain"
    expansion: PositiveInt | None = _EXPANSION
    se: SEField = _SE
    activation: Activation = _ACTIVATION


class VGGParams(BlockParams):
    """vgg: 3x3 convs with bias, closed by a 2x2 max pool (VGG-11 to VGG-19)."""

    type: Literal["vgg"] = "vgg"
    activation: Activation = _ACTIVATION


class RegNetParams(_GroupedBottleneckParams):
    """regnet: RegNet's residual bottleneck: 1x1, grouped 3x3, [SE], 1x1 (RegNetX, RegNetY)."""

    type: Literal["regnet"] = "regnet"
    bottleneck_ratio: Ratio = Field(1.0, description="Inner width = width / bottleneck_ratio (RegNet's b).")
    stride_in: StrideIn = _STRIDE_IN
    avg_down: bool = _AVG_DOWN
    se: SEField = _SE
    activation: Activation = _ACTIVATION


def _odd_kernel(kernel: int) -> int:
    if kernel % 2 == 0:
        raise PydanticCustomError(
            "odd_kernel", "a depthwise kernel of {kernel} has no centre; use an odd kernel", {"kernel": kernel}
        )
    return kernel


class ConvNeXtParams(BlockParams):
    """convnext: depthwise kxk, layer norm, 1x1 up by the expansion, GELU, 1x1 down, layer scale (ConvNeXt)."""

    type: Literal["convnext"] = "convnext"
    kernel: Annotated[int, Field(ge=1, le=63), AfterValidator(_odd_kernel)] = Field(
        7, description="Kernel size of the depthwise conv (odd)."
    )
    expansion: PositiveInt | None = Field(
        None, description="Inner width of the per-pixel MLP / the block's width (default 4)."
    )
    layer_scale: Annotated[float, Field(gt=0, le=1)] | None = Field(
        1e-6, description="Initial value of the learned per-channel scale on the block's output (null: no scale)."
    )
    depthwise: Literal["first", "middle"] = Field(
        "first",
        description="Where the depthwise conv sits: first, before the 1x1 up (ConvNeXt), or middle, between the "
        "1x1 up and the 1x1 down (MobileNetV2's inverted bottleneck).",
    )
    norm: Literal["layer", "batch"] = Field(
        "layer", description="The block's normalization: layer norm over channels (ConvNeXt) or batch norm (ResNet)."
    )
    norms: Literal["one", "each"] = Field(
        "one", description="one: a single norm, after the depthwise conv (ConvNeXt); each: a norm after every conv."
    )
    activation: Activation = Field("gelu", description="Activation function (ConvNeXt's GELU by default).")
    activations: Literal["one", "each"] = Field(
        "one",
        description="one: a single activation, after the 1x1 up (ConvNeXt); each: after every conv but the last, "
        "and after the sum (ResNet).",
    )
    downsample: Literal["layer", "block"] = Field(
        "layer",
        description="How a stage changes width or resolution. layer: a downsampling layer of its own (layer norm, "
        "then a conv with kernel and stride equal to the stage's stride) opens the stage (ConvNeXt). block: the "
        "stage's first block strides in its depthwise conv and projects its shortcut with a 1x1 conv and the "
        "block's norm (ResNet).",
    )


class InvertedResidualParams(BlockParams):
    """inverted_residual: 1x1 expand, depthwise k x k, linear 1x1, identity where the shape keeps (MobileNetV2)."""

    type: Literal["inverted_residual"] = "inverted_residual"
    expand_ratio: Ratio = Field(
        6.0, description="The expansion factor t: inner width = round(input width x t); 1 drops the 1x1 expansion."
    )
    kernel: Annotated[Literal[3, 5, 7], ExactInt] = Field(3, description="Kernel size of the depthwise conv.")
    activation: Activation = _ACTIVATION


class MBConvParams(BlockParams):
    """mbconv: inverted residual with squeeze-excite from the input width and stochastic depth (EfficientNet)."""

    type: Literal["mbconv"] = "mbconv"
    expand_ratio: Ratio = Field(
        6.0,
        description="The expansion factor: inner width = input width x expand_ratio, rounded to a multiple of 8; "
        "where that is the input width, there is no 1x1 expansion.",
    )
    kernel: Annotated[Literal[3, 5, 7], ExactInt] = Field(3, description="Kernel size of the depthwise conv.")
    se_ratio: Annotated[float, Field(ge=0, le=1)] = Field(
        0.25,
        description="Squeeze-and-excitation inside the block, reduced to floor(se_ratio x the block's input width) "
        "(at least 1); 0 for none.",
    )
    activation: Activation = _ACTIVATION


# Every block kind's parameters, in registry order (the order messages and docs list them in).
BLOCK_PARAMS: dict[str, type[BlockParams]] = {
    model.kind_name(): model
    for model in (
        BasicParams,
        BottleneckParams,
        PlainParams,
        VGGParams,
        RegNetParams,
        ConvNeXtParams,
        InvertedResidualParams,
        MBConvParams,
    )
}
BLOCK_NAMES = tuple(BLOCK_PARAMS)
# Knobs several kinds take: written flat on the network (`Spec`) and on a stage (`Stage`) as well.
SHARED_KNOBS = (
    "shortcut", "groups", "group_width", "width_per_group", "bottleneck_ratio", "expansion",
    "stride_in", "avg_down", "se", "preact", "activation",
)  # fmt: skip
# Knobs that override the network's as a pair: a stage that sets either replaces both.
PAIRED_KNOBS = (("groups", "group_width"),)

if TYPE_CHECKING:
    BlockType = str
else:
    BlockType = Literal[BLOCK_NAMES]


def _block_tag(value: Any) -> str:
    if isinstance(value, str):
        return "name"
    if isinstance(value, BlockParams):
        return value.kind_name()
    if isinstance(value, dict):
        tag = value.get("type")
        return tag if isinstance(tag, str) else "mapping"
    return "name"


def _kind_union() -> Any:
    branches: list[Any] = [Annotated[BlockType, Tag("name")]]
    branches += [Annotated[model, Tag(name)] for name, model in BLOCK_PARAMS.items()]
    return Annotated[functools.reduce(operator.or_, branches), Discriminator(_block_tag)]


if TYPE_CHECKING:
    BlockField = str | BlockParams
else:
    BlockField = _kind_union()


def kinds_taking(knob: str) -> str:
    """`bottleneck and regnet`: the block kinds a knob shapes, in registry order ("" for none)."""
    names = [name for name, model in BLOCK_PARAMS.items() if knob in model.knobs()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def block_name(value: str | BlockParams | None) -> str | None:
    """The kind a `block:` value names (None where a stage leaves it to the network)."""
    if value is None or isinstance(value, str):
        return value
    return value.kind_name()


def resolve_params(network: Any, stage: Any) -> BlockParams:
    """The parameters of a stage's blocks: the kind's defaults, the network's flat knobs (those it writes), then
    its `block:` mapping, then the stage's flat knobs, then its `block:` mapping; each later layer's fields
    override the earlier ones.

    A mapping of another kind than the stage's contributes nothing; `groups` and `group_width` are
    replaced as a pair by a layer that sets either.
    """
    network_block = network.block
    stage_block = getattr(stage, "block", None) if stage is not None else None
    name = block_name(stage_block) or block_name(network_block)
    assert name is not None
    model = BLOCK_PARAMS[name]
    shared = _shared_knobs(model)
    # The network's flat knobs where it writes them; elsewhere the kind's own defaults (ConvNeXt's GELU).
    written = network.model_fields_set
    values: dict[str, Any] = {knob: getattr(network, knob) for knob in shared if knob in written}
    layers: list[dict[str, Any]] = []
    if not isinstance(network_block, str) and isinstance(network_block, model):
        layers.append({k: getattr(network_block, k) for k in network_block.model_fields_set if k != "type"})
    if stage is not None:
        layers.append({k: value for k in shared if (value := getattr(stage, k, None)) is not None})
        if stage_block is not None and not isinstance(stage_block, str) and isinstance(stage_block, model):
            layers.append({k: getattr(stage_block, k) for k in stage_block.model_fields_set if k != "type"})
    for layer in layers:
        if not layer:
            continue
        for pair in PAIRED_KNOBS:
            if any(k in layer for k in pair):
                for k in pair:
                    if k in values:
                        values[k] = layer.get(k)
        values.update(layer)
    if values.get("se") is False:
        values["se"] = None
    return construct(model, values)


@functools.cache
def _shared_knobs(model: type[BlockParams]) -> tuple[str, ...]:
    """A kind's knobs that may also be written flat on the network and on a stage, in the model's order."""
    return tuple(knob for knob in model.knobs() if knob in SHARED_KNOBS)


@functools.cache
def _defaults(model: type[BlockParams]) -> dict[str, Any] | None:
    """Every field of `model` with its default, in the model's order; None where a field has no plain default (a
    required field, an alias, a default factory): `construct` then leaves the work to Pydantic."""
    fields = model.__pydantic_fields__
    if model.__pydantic_post_init__ or any(
        info.alias or info.validation_alias or info.default_factory or info.is_required() for info in fields.values()
    ):
        return None
    return {name: info.get_default(call_default_factory=True) for name, info in fields.items()}


def construct(model: type[BlockParams], values: dict[str, Any]) -> BlockParams:
    """`model.model_construct(**values)` for values of the model's own fields, without its per-field lookups: the
    same fields, in the same order, set from `values` or the model's defaults, and the same fields-set.

    Planning resolves every stage's parameters, which makes this the inner loop of design-space sampling.
    """
    defaults = _defaults(model)
    if defaults is None or not values.keys() <= defaults.keys():
        return model.model_construct(**values)
    fields = dict(defaults)
    fields.update(values)
    made = model.__new__(model)
    object.__setattr__(made, "__dict__", fields)
    object.__setattr__(made, "__pydantic_fields_set__", set(values))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made
