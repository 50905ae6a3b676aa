"""The registry of stems: what comes before the first stage.

Each stem plans its ops under torchvision's ResNet names (`conv1`, `bn1`, `act`,
`maxpool`); a layout may regroup them (RegNet's `stem` sequence, VGG's `features`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archspec.lang.schema import Stem
from archspec.plan.ops import Conv, LayerNorm, Norm, Op, Sequence
from archspec.plan.walker import Walker


@dataclass(frozen=True)
class StemKind:
    name: str
    summary: str
    fields: frozenset[str]  # the fields of `stem:` it takes besides `type`
    width: int  # default output width
    pool: bool  # closes with a 3x3/2 max pool unless `pool` says otherwise
    first_convs: Callable[[Walker, Stem, int], tuple[Op, Conv, int]]  # (op named conv1, its last conv, stride)
    # "network": the network's norm and activation follow the conv; "layer": a layer norm alone (ConvNeXt).
    norm: str = "network"


def _single(kernel: int, stride: int) -> Callable[[Walker, Stem, int], tuple[Op, Conv, int]]:
    def plan(walker: Walker, stem: Stem, width: int) -> tuple[Op, Conv, int]:
        conv = walker.conv(walker.channels, width, kernel, walker.size, stride=stride, padding=kernel // 2)
        return conv, conv, stride

    return plan


def _deep(walker: Walker, stem: Stem, width: int) -> tuple[Op, Conv, int]:
    """ResNet-C: three 3x3 convs, the first with stride 2, norm and activation between them."""
    inner = stem.inner_width or max(1, width // 2)
    a = walker.conv(walker.channels, inner, 3, walker.size, stride=2, padding=1)
    b = walker.conv(inner, inner, 3, a.out_size, padding=1)
    c = walker.conv(inner, width, 3, b.out_size, padding=1)
    items: list[tuple[str, Op]] = [("0", a)]
    walker.norm_act(items, "1", "2", inner, a.out_size, walker.spec.activation)
    items.append((str(len(items)), b))
    walker.norm_act(items, str(len(items)), str(len(items) + 1), inner, b.out_size, walker.spec.activation)
    items.append((str(len(items)), c))
    return Sequence(tuple(items)), c, 2


def _patchify(walker: Walker, stem: Stem, width: int) -> tuple[Op, Conv, int]:
    """ConvNeXt's stem: non-overlapping patches, a patch x patch conv with stride patch; a bias unless a batch
    norm follows (its shift makes one redundant, as in every ResNet conv)."""
    patch = stem.patch or 4
    conv = walker.conv(walker.channels, width, patch, walker.size, stride=patch, bias=stem.norm != "batch")
    return conv, conv, patch


STEMS: dict[str, StemKind] = {
    kind.name: kind
    for kind in (
        StemKind(
            "imagenet",
            "7x7/2 conv, norm, activation, 3x3/2 max pool",
            frozenset({"width", "pool"}),
            64,
            True,
            _single(7, 2),
        ),
        StemKind("cifar", "3x3/1 conv, norm, activation", frozenset({"width", "pool"}), 16, False, _single(3, 1)),
        StemKind(
            "deep",
            "three 3x3 convs (ResNet-C), norm, activation, 3x3/2 max pool",
            frozenset({"width", "inner_width", "pool"}),
            64,
            True,
            _deep,
        ),
        StemKind(
            "simple", "3x3/2 conv, norm, activation (RegNet)", frozenset({"width", "pool"}), 32, False, _single(3, 2)
        ),
        StemKind(
            "patchify",
            "patch x patch conv with stride patch, layer norm (ConvNeXt) or batch norm",
            frozenset({"width", "patch", "norm"}),
            96,
            False,
            _patchify,
            norm="layer",
        ),
    )
}
NO_STEM = "none"


def plan_stem(walker: Walker, preact_first: bool) -> list[tuple[str, Op]]:
    """The stem's ops at the walker's place (the input), under ResNet names; [] for `type: none`.

    A pre-activation first stage normalizes its own input, so the stem then ends at its conv.
    """
    stem = walker.spec.stem
    walker.path = ("stem",)
    if stem.type == NO_STEM:
        return []
    kind = STEMS[stem.type]
    width = stem.width or kind.width
    first, last, stride = kind.first_convs(walker, stem, width)
    items: list[tuple[str, Op]] = [("conv1", first)]
    walker.channels, walker.size = width, last.out_size
    walker.total_stride *= stride
    if kind.norm == "layer" and stem.norm == "batch":
        # A patchify stem in a ResNet (the ConvNeXt paper's second step): batch norm, no activation.
        walker.add_params(2 * width)
        items.append(("bn1", Norm("batch", width, walker.size)))
    elif kind.norm == "layer":
        walker.add_params(2 * width)
        items.append(("norm", LayerNorm(width, walker.size)))
    elif not preact_first:
        walker.norm_act(items, "bn1", "act", width, walker.size, walker.spec.activation)
    if stem.pool if stem.pool is not None else kind.pool:
        pool = walker.max_pool(3, 2, 1, walker.size)
        items.append(("maxpool", pool))
        walker.size = pool.out_size
        walker.total_stride *= 2
    return items


def stem_problems(stem: Stem) -> list[tuple[tuple[str | int, ...], str]]:
    """Fields of `stem:` that its type does not take, as (path, message)."""
    takes = STEMS[stem.type].fields if stem.type != NO_STEM else frozenset()
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name in ("width", "inner_width", "pool", "patch", "norm"):
        if getattr(stem, name) is None or name in takes:
            continue
        if name == "inner_width":
            message = "inner_width applies to the deep stem only"
        else:
            message = f"a stem of type {stem.type} takes no {name}"
        problems.append((("stem", name), message))
    return problems
