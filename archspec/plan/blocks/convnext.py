"""ConvNeXt's block (Liu et al. 2022; torchvision's CNBlock): depthwise kxk conv, layer norm, a per-pixel MLP
(1x1 up by the expansion, GELU, 1x1 down) and a learned per-channel scale, added to the block's input.

A stage whose input differs from its blocks in width or resolution opens with torchvision's downsampling
layer (layer norm, then a conv with kernel and stride equal to the stage's stride). Module names are
torchvision's (`block.0` ... `block.5`, `layer_scale`), so its weights load.
"""

from __future__ import annotations

from archspec.lang.blocks import BlockParams, ConvNeXtParams
from archspec.lang.schema import Stage
from archspec.plan.blocks.base import BlockKind, StagePlan
from archspec.plan.ops import Act, LayerNorm, LayerScale, Op, Permute, PixelLinear, Residual, Sequence
from archspec.plan.walker import Walker

CHANNELS_LAST, CHANNELS_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


def convnext_block(walker: Walker, params: ConvNeXtParams) -> Residual:
    dim, size = walker.channels, walker.size
    inner = dim * (params.expansion or 4)
    if params.kernel % 2 == 0:
        raise walker.problem(f"a depthwise kernel of {params.kernel} has no centre; use an odd kernel", "block")
    dw = walker.conv(dim, dim, params.kernel, size, padding=params.kernel // 2, groups=dim, bias=True)
    # Beyond the depthwise conv's weights: its bias, the norm, the two linear layers and the layer scale.
    walker.add_params(dim + 2 * dim + (dim * inner + inner) + (inner * dim + dim) + dim)
    block: list[tuple[str, Op]] = [
        ("0", dw),
        ("1", Permute(CHANNELS_LAST)),
        ("2", LayerNorm(dim, size, channels_last=True)),
        ("3", PixelLinear(dim, inner, size)),
        ("4", Act("gelu")),
        ("5", PixelLinear(inner, dim, size)),
        ("6", Permute(CHANNELS_FIRST)),
    ]
    return Residual(
        kind="convnext",
        in_channels=dim,
        out_channels=dim,
        stride=1,
        in_size=size,
        out_size=size,
        pre=(),
        body=(("block", Sequence(tuple(block))), ("layer_scale", LayerScale(dim, size, params.layer_scale))),
        shortcut=None,
        shortcut_kind="identity",
        shortcut_name="downsample",
        shortcut_first=False,
        shortcut_from_pre=False,
        post=(),
        drop_path=walker.next_drop_path(),
        zero_init=None,
    )


def convnext_stage(walker: Walker, index: int, stage: Stage, params: BlockParams, stride: int) -> StagePlan:
    assert isinstance(params, ConvNeXtParams)
    walker.path = ("stages", index)
    limit = walker.spec.output_stride
    if limit is not None and walker.total_stride * stride > limit:
        raise walker.problem_at(
            ("output_stride",),
            f"convnext stages keep their stride (they have no dilated form); stage {index + 1} would take the "
            f"network's stride past output_stride {limit}",
        )
    transition: Op | None = None
    if stride > 1 or walker.channels != stage.width:
        # torchvision's downsampling layer: layer norm, then a stride x stride conv with stride `stride`.
        cin, size = walker.channels, walker.size
        walker.add_params(2 * cin)
        conv = walker.conv(cin, stage.width, stride, size, stride=stride, bias=True)
        transition = Sequence((("0", LayerNorm(cin, size)), ("1", conv)))
        walker.channels, walker.size = stage.width, conv.out_size
    walker.total_stride *= stride
    blocks: list[Residual] = []
    added = 0  # the parameters the last planned block counted
    for _ in range(stage.depth):
        if blocks and walker.spec.drop_path == 0:
            # Without a growing drop-path rate the next block is the same record: planned once, reused.
            walker.add_params(added)
            walker.next_drop_path()
            blocks.append(blocks[-1])
            continue
        before = walker.params
        blocks.append(convnext_block(walker, params))
        added = walker.params - before
    return StagePlan(tuple(blocks), stride, transition)


CONVNEXT = BlockKind(
    params=ConvNeXtParams,
    family="convnext",
    residual=True,
    plan_stage=convnext_stage,
    joins=frozenset({"resnet"}),
    width_quantum=lambda params: None,
)
