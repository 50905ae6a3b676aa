"""The registry of stage generators: `stages:` written as a rule that expands to ordinary stages.

Everything after expansion (rules, planning, counting, `archspec show`) sees only the
stages a generator produced, never the generator.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

from pydantic import ValidationError

from archspec.lang.schema import RegNetRule, Spec, SqueezeExcite, Stage, StageGenerators
from archspec.plan.blocks import BLOCKS
from archspec.plan.shapes import round_width
from archspec.plan.stems import NO_STEM, STEMS
from archspec.plan.walker import PlanError, PlanProblem

_QUANT = 8  # RegNet's widths are multiples of 8
_FLOAT32 = struct.Struct("f")


def _f32(x: float) -> float:
    """`x` rounded to float32: torchvision generates RegNet widths with float32 tensors, and a width that
    lands near a rounding boundary must round as it does there."""
    return float(_FLOAT32.unpack(_FLOAT32.pack(x))[0])


def regnet_widths(rule: RegNetRule) -> list[int]:
    """Per-block widths of the quantized linear rule, in torchvision's float32 arithmetic (or pycls's float64).

    u_j = w0 + wa * j; s_j = round(log(u_j / w0) / log(wm)); w_j = round(w0 * wm^s_j / 8) * 8.
    """
    if rule.arithmetic == "pycls":
        steps64 = [round(math.log((rule.w0 + rule.wa * j) / rule.w0) / math.log(rule.wm)) for j in range(rule.depth)]
        return [round(rule.w0 * rule.wm**s / _QUANT) * _QUANT for s in steps64]
    w0, wa, wm = _f32(rule.w0), _f32(rule.wa), _f32(rule.wm)
    log_wm = _f32(math.log(rule.wm))
    widths = []
    width_at: dict[int, int] = {}  # a stage's width, by its step s
    for j in range(rule.depth):
        # j is a float32 as it is: block indices stay below 2**24.
        u = _f32(_f32(j * wa) + w0)
        steps = round(_f32(_f32(math.log(_f32(u / w0))) / log_wm))
        if steps not in width_at:
            quantized = _f32(w0 * _f32(wm**steps))
            width_at[steps] = round(_f32(quantized / _QUANT)) * _QUANT
        widths.append(width_at[steps])
    return widths


def expand_regnet(rule: RegNetRule) -> list[Stage]:
    """RegNet's stages: blocks of equal width form a stage (stride 2 each); each stage's width is then adjusted
    so that its inner width (width / b) divides by its group width, itself capped at the inner width
    (torchvision's `_adjust_widths_groups_compatibilty`, or pycls's `adjust_ws_gs_comp`: they differ where
    a width lies exactly halfway between two multiples of the group width)."""
    widths = regnet_widths(rule)
    runs: list[list[int]] = []  # [width, depth]
    for width in widths:
        if runs and runs[-1][0] == width:
            runs[-1][1] += 1
        else:
            runs.append([width, 1])
    kind = BLOCKS[rule.block]
    ratio = rule.bottleneck_ratio
    # A number the rule cannot hand to its blocks would be dropped without a word.
    unused = [
        (name, knob, off)
        for name, knob, off, written in (
            ("se_ratio", "se", "null", rule.se_ratio is not None),
            ("bottleneck_ratio", "bottleneck_ratio", "1", ratio != 1.0),
        )
        if written and knob not in kind.knobs
    ]
    if unused:
        raise PlanError(
            [
                PlanProblem(
                    ("stages", "regnet", name),
                    f"{name} sets the generated blocks' `{knob}`, which {rule.block} blocks do not take; "
                    f"write `{name}: {off}` or generate blocks that take it",
                    key=True,
                )
                for name, knob, off in unused
            ]
        )
    stages = []
    for width, depth in runs:
        inner = int(width / ratio)
        if inner < 1:
            raise PlanError(
                PlanProblem(
                    ("stages", "regnet", "bottleneck_ratio"),
                    f"a stage of width {width} divided by the bottleneck ratio {ratio:g} leaves no inner channel; "
                    f"use a ratio of at most {width} or a larger w0",
                )
            )
        group_width = min(rule.group_width, inner)
        if rule.arithmetic == "pycls":
            fitted = int(round(inner / group_width) * group_width)  # Python's round: halves to even
        else:
            fitted = round_width(inner, group_width)
        width = int(fitted * ratio)
        fields: dict[str, object] = {"depth": depth, "width": width, "stride": 2, "block": rule.block}
        if "group_width" in kind.knobs:
            fields["group_width"] = group_width
        if "bottleneck_ratio" in kind.knobs and ratio != 1.0:
            fields["bottleneck_ratio"] = ratio
        if rule.se_ratio is not None and "se" in kind.knobs:
            fields["se"] = SqueezeExcite(ratio=rule.se_ratio, of="input")
        try:
            stages.append(Stage.model_validate(fields))
        except ValidationError as exc:
            raise PlanError(PlanProblem(("stages", "regnet"), _stage_refused(exc))) from None
    return stages


def _stage_refused(exc: ValidationError) -> str:
    """Why a stage the rule made is not a stage (a width past the largest one), in the spec's words."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "a field"
    limit = (error.get("ctx") or {}).get("le")
    if limit is not None:
        return f"the rule makes a stage with {field} {error.get('input')}, above the largest, {limit:,}"
    return f"the rule makes a stage whose {field} is not valid ({error.get('input')!r})"


GENERATORS: dict[str, Callable[[RegNetRule], list[Stage]]] = {"regnet": expand_regnet}


def expand_stages(stages: list[Stage] | StageGenerators) -> tuple[Stage, ...]:
    """The ordinary stages a spec's `stages:` stands for."""
    if isinstance(stages, list):
        return tuple(stages)
    for name, expand in GENERATORS.items():
        rule = getattr(stages, name, None)
        if rule is not None:
            return tuple(expand(rule))
    raise LookupError(f"no generator in {stages!r} (known: {', '.join(GENERATORS)})")


def scale_spec(spec: Spec, stages: tuple[Stage, ...]) -> tuple[Spec, tuple[Stage, ...]]:
    """The spec and stages that `scale:` stands for (unchanged without one), as torchvision scales MobileNetV2
    and EfficientNet: every width times `width`, rounded by `_make_divisible` to `divisor`; every stage's depth
    times `depth`, rounded up; the head's conv scaled only upwards (MobileNetV2's last channel)."""
    rule = spec.scale
    if rule is None:
        return spec, stages

    def width(value: int, factor: float = rule.width) -> int:
        return round_width(value * factor, rule.divisor)

    scaled = tuple(
        stage.model_copy(update={"width": width(stage.width), "depth": math.ceil(stage.depth * rule.depth)})
        for stage in stages
    )
    stem, head = spec.stem, spec.head
    if stem.type != NO_STEM:
        stem = stem.model_copy(update={"width": width(stem.width or STEMS[stem.type].width)})
    if head.conv is not None:
        head = head.model_copy(update={"conv": width(head.conv, max(1.0, rule.width))})
    return spec.model_copy(update={"stem": stem, "head": head, "stages": list(scaled), "scale": None}), scaled
