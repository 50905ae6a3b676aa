"""The registry of block kinds: one entry per kind, each in its own module.

A block kind says which layout family it belongs to (how its modules are named),
which knobs shape it, and how it plans one stage. Adding a kind means writing
its module, registering it in `BLOCKS` below, adding its name to the schema's
`BlockType`, and a stock spec with its tests (docs/adding-a-block.md).
"""

from __future__ import annotations

from archspec.plan.blocks.base import BlockArgs, BlockKind, Knobs, StagePlan, se_reduced_width, stage_knobs
from archspec.plan.blocks.regnet import REGNET
from archspec.plan.blocks.residual import BASIC, BOTTLENECK, PLAIN
from archspec.plan.blocks.vgg import VGG

BLOCKS: dict[str, BlockKind] = {kind.name: kind for kind in (BASIC, BOTTLENECK, PLAIN, VGG, REGNET)}


def block_kind(name: str) -> BlockKind:
    """The registry entry of a block kind; a name the registry lacks is a bug (the schema lists the kinds)."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise LookupError(f"no block kind {name!r} in the registry (known: {', '.join(BLOCKS)})") from None


__all__ = ["BLOCKS", "BlockArgs", "BlockKind", "Knobs", "StagePlan", "block_kind", "se_reduced_width", "stage_knobs"]
