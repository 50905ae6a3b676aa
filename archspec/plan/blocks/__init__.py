"""The registry of block kinds: one entry per kind, each in its own module.

A block kind pairs its parameters model (`archspec.lang.blocks`) with the layout family it
belongs to (how its modules are named), how it plans one stage, and its rules. Adding a kind
means writing its parameters model and its module, registering it in `BLOCKS` below, and a
stock spec with its tests (docs/adding-a-block.md); the schema's `BlockType` follows.
"""

from __future__ import annotations

from archspec.plan.blocks.base import BlockArgs, BlockKind, StagePlan, se_reduced_width, stage_knobs
from archspec.plan.blocks.convnext import CONVNEXT
from archspec.plan.blocks.mbconv import MBCONV
from archspec.plan.blocks.mobilenet import INVERTED_RESIDUAL
from archspec.plan.blocks.regnet import REGNET
from archspec.plan.blocks.residual import BASIC, BOTTLENECK, PLAIN
from archspec.plan.blocks.vgg import VGG

BLOCKS: dict[str, BlockKind] = {
    kind.name: kind for kind in (BASIC, BOTTLENECK, PLAIN, VGG, REGNET, CONVNEXT, INVERTED_RESIDUAL, MBCONV)
}


def block_kind(name: str) -> BlockKind:
    """The registry entry of a block kind; a name the registry lacks is a bug (the schema lists the kinds)."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise LookupError(f"no block kind {name!r} in the registry (known: {', '.join(BLOCKS)})") from None


__all__ = ["BLOCKS", "BlockArgs", "BlockKind", "StagePlan", "block_kind", "se_reduced_width", "stage_knobs"]
