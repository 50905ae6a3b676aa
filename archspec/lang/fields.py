"""The language's shared vocabulary: the model policy, bounded numbers, closed choices and the
squeeze-and-excitation settings that the spec's models and the block kinds' parameters both use."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

ShortcutOption = Literal["A", "B", "C"]
Activation = Literal["relu", "relu6", "silu", "gelu"]
StrideIn = Literal["1x1", "3x3"]
# Widths, channels and classes far beyond any real network (2**24) are typos; bounding them keeps every
# later multiplication in range and every message short.
MAX_WIDTH = 1 << 24
MAX_SIZE = 1 << 16
PositiveInt = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Ratio = Annotated[float, Field(gt=0, le=64)]


def _exact_int(value: object) -> object:
    """A Literal of integers compares by equality, so on its own it takes `true` as 1 and `5.0` as 5; the
    language takes neither as an integer anywhere."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float):
        raise PydanticCustomError("int_from_float", "Input should be a valid integer")
    return value


# Annotates every closed choice of integers (`Annotated[Literal[3, 5, 7], ExactInt]`).
ExactInt = BeforeValidator(_exact_int)


class Model(BaseModel):
    """Policy shared by every part of a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SqueezeExcite(Model):
    """Squeeze-and-excitation: global pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid gate on the block's features."""

    reduction: PositiveInt = Field(
        default=16, description="Reduced width = the reference width / reduction, rounded to `divisor`."
    )
    divisor: PositiveInt = Field(
        default=8, description="With `reduction`: the reduced width is rounded to a multiple of this (at least this)."
    )
    ratio: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="Instead of `reduction`: reduced width = round(ratio x the reference width), at least 1 "
        "(RegNetY: 0.25 of the input width).",
    )
    of: Literal["output", "input"] = Field(
        default="output",
        description="The reference width: the block's output width (SE-ResNet) or its input width (RegNetY).",
    )


def _se_tag(value: Any) -> str:
    return "off" if value is False else "on"


# `false` turns squeeze-and-excitation off (on a stage: where the network has it).
SEField = (
    Annotated[
        Annotated[SqueezeExcite, Tag("on")] | Annotated[Literal[False], Tag("off")],
        Discriminator(_se_tag),
    ]
    | None
)
