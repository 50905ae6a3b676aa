"""VGG's stages (Simonyan & Zisserman 2014): `depth` 3x3 convs with bias, each followed by norm and activation,
closed by a 2x2 max pool; torchvision numbers them all in one `features` sequence."""

from __future__ import annotations

from archspec.lang.blocks import BlockParams, VGGParams
from archspec.lang.schema import Stage
from archspec.plan.blocks.base import BlockKind, StagePlan
from archspec.plan.ops import Op
from archspec.plan.walker import Walker


def vgg_stage(walker: Walker, index: int, stage: Stage, knobs: BlockParams, stride: int) -> StagePlan:
    assert isinstance(knobs, VGGParams)
    walker.path = ("stages", index)
    items: list[tuple[str, Op]] = []
    for _ in range(stage.depth):
        conv = walker.conv(walker.channels, stage.width, 3, walker.size, padding=1, bias=True)
        items.append(("conv", conv))
        walker.channels, walker.size = stage.width, conv.out_size
        walker.norm_act(items, "norm", "act", walker.channels, walker.size, knobs.activation)
    if stride == 2:
        pool = walker.max_pool(2, 2, 0, walker.size)
        items.append(("pool", pool))
        walker.size = pool.out_size
    walker.total_stride *= stride
    return StagePlan(tuple(op for _, op in items), stride)


VGG = BlockKind(
    params=VGGParams,
    family="vgg",
    residual=False,
    plan_stage=vgg_stage,
    tolerates=frozenset({"shortcut", "stride_in", "expansion"}),
    first_stride=2,
    refuses=frozenset({"se", "avg_down", "drop_path", "output_stride", "preact", "zero_init_residual"}),
)
