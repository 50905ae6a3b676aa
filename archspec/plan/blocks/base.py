"""What every block kind shares: resolved knobs, the registry entry's shape, and the residual stage walk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from archspec.lang.blocks import BlockParams, resolve_params
from archspec.lang.schema import Spec, Stage
from archspec.lang.schema import SqueezeExcite as SESettings
from archspec.plan.ops import Op, Residual
from archspec.plan.shapes import make_divisible
from archspec.plan.walker import MAX_PARAMS, Walker


def stage_knobs(spec: Spec, stage: Stage) -> BlockParams:
    """The parameters of a stage's blocks, resolved: the stage's values over the network's
    (`archspec.lang.blocks.resolve_params`)."""
    return resolve_params(spec, stage)


def group_quantum(params: BlockParams) -> int | None:
    """The step of a grouped kind's width: its group width, times its bottleneck ratio where that is whole."""
    group_width = getattr(params, "group_width", None)
    if not isinstance(group_width, int):
        return None
    ratio = getattr(params, "bottleneck_ratio", 1.0)
    return max(1, int(group_width * ratio)) if (group_width * ratio).is_integer() else group_width


def se_reduced_width(se: SESettings, in_channels: int, out_channels: int) -> int:
    """The width inside an SE unit: a ratio of (round, torchvision's RegNetY rule) or a reduction of
    (rounded to `divisor`, timm's SE-ResNet rule) the block's input or output width."""
    reference = in_channels if se.of == "input" else out_channels
    if se.ratio is not None:
        return max(1, round(se.ratio * reference))
    return make_divisible(reference / se.reduction, se.divisor)


@dataclass(frozen=True)
class BlockArgs:
    """What one block is planned from: its kind's parameters, base width, stride and dilations, and where it sits."""

    knobs: BlockParams
    stage: Stage
    stage_index: int
    width: int
    stride: int
    first_dilation: int  # of the convs that see the block's input (the previous stage's dilation)
    dilation: int  # of the others (this stage's)
    first: bool  # the first block of its stage


def written_at(
    walker: Walker, stage: Stage, index: int, kind: type[BlockParams], knobs: tuple[str, ...]
) -> tuple[str | int, ...] | None:
    """Where the first of a kind's own `knobs` is written for stage `index`: in the stage's `block:` mapping of
    that kind, else in the network's; None where neither writes one (the kind's default)."""
    for block, path in ((stage.block, ("stages", index, "block")), (walker.spec.block, ("block",))):
        if isinstance(block, kind):
            for knob in knobs:
                if knob in block.model_fields_set:
                    return (*path, knob)
    return None


@dataclass(frozen=True)
class StagePlan:
    """One planned stage: its ops (blocks, or VGG's flat convs), the stride it applied, and the layer that
    brings the previous stage's output to its width and resolution, where it has one of its own (ConvNeXt's
    downsampling layer)."""

    ops: tuple[Op, ...]
    stride: int
    transition: Op | None = None


@dataclass(frozen=True)
class BlockKind:
    """One entry of the registry: a kind's parameters model, its planner, and the rules that come with it."""

    params: type[BlockParams]  # its parameters (archspec.lang.blocks); the knobs that shape it are its fields
    family: str  # the module layout it belongs to (archspec.plan.layouts)
    residual: bool  # its blocks add a shortcut (zero_init_residual and drop path apply)
    # Plans one stage: (walker, stage index, stage, its parameters, its stride) -> its ops.
    plan_stage: Callable[[Walker, int, Stage, BlockParams, int], StagePlan]
    # Shared knobs it ignores without complaint when written flat (specs written before per-stage knobs set them).
    tolerates: frozenset[str] = frozenset()
    # The stride of a stage that gives none: `first_stride` for the first stage, 2 after.
    first_stride: int = 1
    # Network fields its family cannot have, when every stage is of this family.
    refuses: frozenset[str] = frozenset()
    # Other families whose networks may hold stages of this kind (their module layouts place it).
    joins: frozenset[str] = frozenset()

    # The step of a stage's width that keeps its blocks valid (None: any width); `fit` rounds widths to it.
    width_quantum: Callable[[BlockParams], int | None] = field(default=lambda params: group_quantum(params))

    # The module layout of a network whose first stage has these parameters, where they decide it (default:
    # `family`).
    family_of: Callable[[BlockParams], str] | None = None

    def layout_family(self, params: BlockParams) -> str:
        """The module layout a network whose first stage is of this kind, with these parameters, has."""
        return self.family if self.family_of is None else self.family_of(params)

    @property
    def name(self) -> str:
        return self.params.kind_name()

    @property
    def summary(self) -> str:
        return (self.params.__doc__ or "").split(": ", 1)[-1].strip().rstrip(".")

    @property
    def knobs(self) -> frozenset[str]:
        return frozenset(self.params.knobs())

    def stage_stride(self, index: int, stage: Stage) -> int:
        """The stride of stage `index`: its own, or this kind's default."""
        if stage.stride is not None:
            return stage.stride
        return self.first_stride if index == 0 else 2


def plan_residual_stage(
    make_block: Callable[[Walker, BlockArgs], Residual], *, reuse: bool = False
) -> Callable[[Walker, int, Stage, BlockParams, int], StagePlan]:
    """The stage planner shared by every residual kind: stride or dilation, then `depth` blocks.

    Past `output_stride` a stage keeps its resolution and dilates instead (torchvision's
    replace_stride_with_dilation, timm's output_stride): its first block still sees the
    previous dilation in the convs that read its input.

    With `reuse`, a block planned before from the same arguments at the same place (in this network or in an
    earlier one: design-space sampling plans thousands of networks that share most of their blocks) is that
    block again. Only for a `make_block` whose block depends on nothing but its kind's parameters, the network's
    norm and what `_BlockPlace` keeps, and that changes nothing of the walker but its place (channels and size),
    its parameter count and its drop-path index; the stage and its index may only name a field in a message. A
    block that raises is never kept.
    """
    known = _KNOWN.setdefault(make_block, {})

    def plan(walker: Walker, index: int, stage: Stage, knobs: BlockParams, stride: int) -> StagePlan:
        first_dilation = walker.dilation
        limit = walker.spec.output_stride
        if limit is not None and walker.total_stride * stride > limit:
            walker.dilation *= stride
            stride = 1
        walker.total_stride *= stride
        made: dict[_BlockPlace, tuple[Residual, int]] | None = None
        if reuse:
            kind = (knobs, walker.spec.norm, walker.spec.norm_groups)
            made = known.get(kind)
            if made is None:
                if len(known) >= _KNOWN_PARAMS:
                    known.clear()
                made = known[kind] = {}
            elif len(made) >= _KNOWN_BLOCKS:
                made.clear()
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
            block_stride = stride if first else 1
            block_dilation = first_dilation if first else walker.dilation
            place = None
            if made is not None:
                place = _BlockPlace(
                    walker.channels,
                    walker.size,
                    stage.width,
                    block_stride,
                    block_dilation,
                    walker.dilation,
                    first,
                    walker.drop_path_rate(),
                )
                found = made.get(place)
                if found is not None and walker.params + found[1] <= MAX_PARAMS:
                    block, added = found
                    walker.add_params(added)
                    walker.next_drop_path()
                    walker.channels, walker.size = block.out_channels, block.out_size
                    blocks.append(block)
                    continue
            args = BlockArgs(knobs, stage, index, stage.width, block_stride, block_dilation, walker.dilation, first)
            before = walker.params
            blocks.append(make_block(walker, args))
            added = walker.params - before
            if made is not None and place is not None:
                made[place] = (blocks[-1], added)
        return StagePlan(tuple(blocks), stride)

    return plan


# The blocks the reusing stage planners made: by block maker, then by the kind's parameters and the network's norm
# (kind, groups), then by `_BlockPlace`, each with the parameters it counted. At most _KNOWN_BLOCKS blocks for one
# set of parameters, and _KNOWN_PARAMS sets for one maker, are kept (a block is about 4 KB: some 30 MB a maker).
_KNOWN: dict[
    Callable[[Walker, BlockArgs], Residual], dict[tuple[BlockParams, str, int], dict[_BlockPlace, tuple[Residual, int]]]
] = {}
_KNOWN_BLOCKS = 1024
_KNOWN_PARAMS = 8


def forget_reused_blocks() -> None:
    """Empty the reusing stage planners' memory: the next networks' blocks are all planned afresh."""
    for known in _KNOWN.values():
        known.clear()


class _BlockPlace(NamedTuple):
    """What a reusable block is planned from besides its kind's parameters and the network's norm: the place it
    starts from, its arguments (`BlockArgs`, less the stage that only messages name) and its drop-path rate."""

    channels: int
    size: tuple[int, int]
    width: int
    stride: int
    first_dilation: int
    dilation: int
    first: bool
    drop_path: float


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
