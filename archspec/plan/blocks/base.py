"""What every block kind shares: resolved knobs, the registry entry's shape, and the residual stage walk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archspec.lang.schema import Spec, Stage
from archspec.lang.schema import SqueezeExcite as SESettings
from archspec.plan.ops import Op, Residual
from archspec.plan.shapes import make_divisible
from archspec.plan.walker import MAX_PARAMS, Walker


@dataclass(frozen=True)
class Knobs:
    """The block knobs of one stage, resolved: the stage's value where it sets one, else the network's."""

    block: str
    shortcut: str
    groups: int | None
    group_width: int | None
    width_per_group: int
    bottleneck_ratio: float
    expansion: int | None
    stride_in: str
    avg_down: bool
    se: SESettings | None
    preact: bool
    activation: str


def stage_knobs(spec: Spec, stage: Stage) -> Knobs:
    """Resolve a stage's knobs; `groups` and `group_width` override the network's as a pair."""
    if stage.groups is not None or stage.group_width is not None:
        groups, group_width = stage.groups, stage.group_width
    else:
        groups, group_width = spec.groups, spec.group_width
    se = stage.se if stage.se is not None else spec.se
    return Knobs(
        block=stage.block or spec.block,
        shortcut=stage.shortcut or spec.shortcut,
        groups=groups,
        group_width=group_width,
        width_per_group=stage.width_per_group if stage.width_per_group is not None else spec.width_per_group,
        bottleneck_ratio=stage.bottleneck_ratio if stage.bottleneck_ratio is not None else spec.bottleneck_ratio,
        expansion=stage.expansion if stage.expansion is not None else spec.expansion,
        stride_in=stage.stride_in or spec.stride_in,
        avg_down=stage.avg_down if stage.avg_down is not None else spec.avg_down,
        se=se or None,
        preact=stage.preact if stage.preact is not None else spec.preact,
        activation=stage.activation or spec.activation,
    )


def se_reduced_width(se: SESettings, in_channels: int, out_channels: int) -> int:
    """The width inside an SE unit: a ratio of (round, torchvision's RegNetY rule) or a reduction of
    (rounded to `divisor`, timm's SE-ResNet rule) the block's input or output width."""
    reference = in_channels if se.of == "input" else out_channels
    if se.ratio is not None:
        return max(1, round(se.ratio * reference))
    return make_divisible(reference / se.reduction, se.divisor)


@dataclass(frozen=True)
class BlockArgs:
    """What one block is planned from: its knobs, base width, stride and dilations, and where it sits."""

    knobs: Knobs
    stage: Stage
    stage_index: int
    width: int
    stride: int
    first_dilation: int  # of the convs that see the block's input (the previous stage's dilation)
    dilation: int  # of the others (this stage's)
    first: bool  # the first block of its stage


@dataclass(frozen=True)
class StagePlan:
    """One planned stage: its ops (blocks, or VGG's flat convs), and the stride it applied."""

    ops: tuple[Op, ...]
    stride: int


@dataclass(frozen=True)
class BlockKind:
    """One entry of the registry."""

    name: str
    family: str  # the module layout it belongs to (archspec.plan.layouts)
    summary: str
    knobs: frozenset[str]  # the knobs that shape it; anywhere else they are an error
    # Knobs it ignores without complaint (specs written before per-stage knobs set them regardless).
    tolerates: frozenset[str]
    residual: bool  # its blocks add a shortcut (zero_init_residual and drop path apply)
    plan_stage: Callable[[Walker, int, Stage, Knobs], StagePlan]


def plan_residual_stage(
    make_block: Callable[[Walker, BlockArgs], Residual],
) -> Callable[[Walker, int, Stage, Knobs], StagePlan]:
    """The stage planner shared by every residual kind: stride or dilation, then `depth` blocks.

    Past `output_stride` a stage keeps its resolution and dilates instead (torchvision's
    replace_stride_with_dilation, timm's output_stride): its first block still sees the
    previous dilation in the convs that read its input.
    """

    def plan(walker: Walker, index: int, stage: Stage, knobs: Knobs) -> StagePlan:
        stride = stage_stride(index, stage, knobs.block)
        first_dilation = walker.dilation
        limit = walker.spec.output_stride
        if limit is not None and walker.total_stride * stride > limit:
            walker.dilation *= stride
            stride = 1
        walker.total_stride *= stride
        blocks: list[Residual] = []
        added = 0  # the parameters the last planned block counted
        for j in range(stage.depth):
            walker.path = ("stages", index)
            first = j == 0
            if j > 1 and _repeats(walker, blocks[-1]) and walker.params + added <= MAX_PARAMS:
                # Planned again, the block would count these parameters; past the limit it is planned
                # again, so that the limit stops it at the same conv with the same message.
                walker.add_params(added)
                walker.next_drop_path()
                blocks.append(blocks[-1])
                continue
            args = BlockArgs(
                knobs,
                stage,
                index,
                stage.width,
                stride if first else 1,
                first_dilation if first else walker.dilation,
                walker.dilation,
                first,
            )
            before = walker.params
            blocks.append(make_block(walker, args))
            added = walker.params - before
        return StagePlan(tuple(blocks), stride)

    return plan


def _repeats(walker: Walker, previous: Residual) -> bool:
    """Whether the next block is `previous` again, so that it need not be planned twice.

    A block after a stage's second is made from the same arguments as the one before it (stride 1,
    the stage's dilation); it is the same block when it also starts from the same place, that is
    when the one before left channels and size as it found them, and when no drop-path rate grows
    from block to block. Plans are immutable, so the one record can stand at both positions.
    """
    return (
        walker.spec.drop_path == 0
        and previous.in_channels == previous.out_channels == walker.channels
        and previous.in_size == previous.out_size == walker.size
    )


def stage_stride(index: int, stage: Stage, block: str) -> int:
    if stage.stride is not None:
        return stage.stride
    return 2 if block == "vgg" or index > 0 else 1
