"""The registry of module layouts: how a family names its stem, stages and head.

The names are the ecosystem's state_dict keys, so published weights load:
torchvision's ResNet (`conv1`, `layer1.0.conv1`, `fc`), VGG (`features.N`,
`classifier.N`), RegNet (`stem.0`, `trunk_output.block1.block1-0.f.a.0`, `fc`), MobileNetV2
(`features.N.conv.M`, one index per block) and EfficientNet (`features.N.J.block.M`, one index per
stage). The head's conv, where a spec has one, is the last of `features` in the last two and
`conv_head` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from archspec.plan.blocks import BLOCKS, StagePlan
from archspec.plan.ops import Items, Op, Plan, Sequence, children
from archspec.plan.walker import numbered


@dataclass(frozen=True)
class Assembly:
    """A layout's arrangement of the stem and stage ops."""

    children: list[tuple[str, Op]]  # top-level modules before the head
    stem_tap: tuple[str, ...] | None  # the module path of the stem's output
    stage_taps: list[tuple[str, ...]]  # the module path of each stage's output
    stage_ops: list[Items]  # the ops each stage's report row counts


@dataclass(frozen=True)
class InitLaw:
    """How a family's reference constructor (torchvision's) initialises its convs and linear layers; norms
    always start at one with zero bias, layer scales at their spec's value, other layers as torch makes them.

    conv: "he_fan_out" (He normal, fan out, zero bias: ResNet, VGG, RegNet, MobileNetV2, EfficientNet) or
    "trunc_normal" (N(0, 0.02) cut at +-2, zero bias: ConvNeXt).
    linear: "torch" (torch's own, uniform in +-1/sqrt(fan in) for weight and bias: ResNet), "normal" (N(0, 0.01),
    zero bias: VGG, RegNet, MobileNetV2), "uniform_out" (uniform in +-1/sqrt(out features), zero bias:
    EfficientNet) or "trunc_normal" (as the convs: ConvNeXt, its per-pixel linear layers included).
    """

    conv: Literal["he_fan_out", "trunc_normal"]
    linear: Literal["torch", "normal", "uniform_out", "trunc_normal"]


@dataclass(frozen=True)
class Layout:
    name: str
    summary: str
    fc_name: str | None  # the name of a lone classifier layer; None: always a `classifier` sequence
    init: InitLaw  # the family's initialisation (archspec.nn.materialize draws it)
    # (stem ops, planned stages, the head's conv or []) -> the arrangement
    assemble: Callable[[list[tuple[str, Op]], list[StagePlan], list[tuple[str, Op]]], Assembly]
    place: Callable[[Plan, str], str]  # where a state_dict key lives, in words
    head_norm: bool = False  # a layer norm over the pooled features opens the classifier (ConvNeXt)


def _stage_block(stage: str, block: str) -> str:
    return f"stage {stage}, block {int(block) + 1}" if block.isdigit() else f"stage {stage}"


def _resnet_place(plan: Plan, key: str) -> str:
    first, _, rest = key.partition(".")
    if first.startswith("layer") and first[5:].isdigit():
        return _stage_block(first[5:], rest.partition(".")[0])
    stem = {name for section in plan.sections if section.name == "stem" for name, _ in section.ops}
    return "the stem" if first in stem else "the head"


def _regnet_place(plan: Plan, key: str) -> str:
    parts = key.split(".")
    if parts[0] == "trunk_output" and len(parts) > 2 and parts[1].startswith("block"):
        return _stage_block(parts[1][5:], parts[2].rpartition("-")[2])
    return "the stem" if parts[0] == "stem" else "the head"


def _features_place(plan: Plan, key: str) -> str:
    parts = key.split(".")
    if parts[0] == "features" and len(parts) > 1:
        for section in plan.sections:
            if any(name == parts[1] for name, _ in section.ops):
                return f"stage {section.name[5:]}" if section.name.startswith("stage") else f"the {section.name}"
    return "the head"


def _resnet(stem: list[tuple[str, Op]], stages: list[StagePlan], tail: list[tuple[str, Op]]) -> Assembly:
    children = list(stem)
    taps: list[tuple[str, ...]] = []
    ops: list[Items] = []
    for i, stage in enumerate(stages, 1):
        ops_in_order = ((stage.transition,) if stage.transition is not None else ()) + stage.ops
        seq = Sequence(tuple((str(j), block) for j, block in enumerate(ops_in_order)))
        children.append((f"layer{i}", seq))
        taps.append((f"layer{i}",))
        ops.append(((f"layer{i}", seq),))
    children += [("conv_head", op) for _, op in tail]
    return Assembly(children, (stem[-1][0],) if stem else None, taps, ops)


def flatten(items: Items, start: int = 0) -> list[tuple[str, Op]]:
    """Nested sequences as one numbered list (VGG's `features`)."""
    flat: list[tuple[str, Op]] = []
    for _, op in items:
        if isinstance(op, Sequence):
            flat += flatten(op.items, start + len(flat))
        else:
            flat.append((str(start + len(flat)), op))
    return flat


def _vgg(stem: list[tuple[str, Op]], stages: list[StagePlan], tail: list[tuple[str, Op]]) -> Assembly:
    features = flatten(tuple(stem))
    stem_tap = ("features", features[-1][0]) if features else None
    taps: list[tuple[str, ...]] = []
    ops: list[Items] = []
    for stage in stages:
        flat = flatten(tuple(("", op) for op in stage.ops), len(features))
        features += flat
        taps.append(("features", flat[-1][0]))
        ops.append(tuple(flat))
    features += flatten(tuple(tail), len(features))
    return Assembly([("features", Sequence(tuple(features)))], stem_tap, taps, ops)


def _regnet(stem: list[tuple[str, Op]], stages: list[StagePlan], tail: list[tuple[str, Op]]) -> Assembly:
    children: list[tuple[str, Op]] = (
        [("stem", Sequence(tuple((str(i), op) for i, (_, op) in enumerate(stem))))] if stem else []
    )
    trunk: list[tuple[str, Op]] = []
    taps: list[tuple[str, ...]] = []
    ops: list[Items] = []
    for i, stage in enumerate(stages, 1):
        seq = Sequence(tuple((f"block{i}-{j}", block) for j, block in enumerate(stage.ops)))
        trunk.append((f"block{i}", seq))
        taps.append(("trunk_output", f"block{i}"))
        ops.append(((f"block{i}", seq),))
    children.append(("trunk_output", Sequence(tuple(trunk))))
    children += [("conv_head", op) for _, op in tail]
    return Assembly(children, ("stem",) if stem else None, taps, ops)


def _features(
    place: Callable[[StagePlan], list[Op]],
) -> Callable[[list[tuple[str, Op]], list[StagePlan], list[tuple[str, Op]]], Assembly]:
    """torchvision's MobileNets and ConvNeXt: `features` numbers the stem (one sequence at 0), then what `place`
    makes of each stage, then the head's conv; the classifier follows `features`."""

    def assemble(stem: list[tuple[str, Op]], stages: list[StagePlan], tail: list[tuple[str, Op]]) -> Assembly:
        features: list[tuple[str, Op]] = [("0", Sequence(numbered([op for _, op in stem])))] if stem else []
        taps: list[tuple[str, ...]] = []
        ops: list[Items] = []
        for stage in stages:
            placed = tuple((str(len(features) + j), op) for j, op in enumerate(place(stage)))
            features += placed
            taps.append(("features", placed[-1][0]))
            ops.append(placed)
        features += [(str(len(features)), op) for _, op in tail]
        return Assembly([("features", Sequence(tuple(features)))], ("features", "0") if stem else None, taps, ops)

    return assemble


def _leading(stage: StagePlan) -> list[Op]:
    """A stage's own downsampling layer, where it has one (ConvNeXt's): it leads the stage's blocks."""
    return [stage.transition] if stage.transition is not None else []


def _by_block(stage: StagePlan) -> list[Op]:
    """MobileNetV2: one index per block."""
    return _leading(stage) + list(stage.ops)


def _by_stage(stage: StagePlan) -> list[Op]:
    """EfficientNet: one index per stage, a sequence of its blocks."""
    return [Sequence(numbered(_leading(stage) + list(stage.ops)))]


def _blocks_after_transition(stage: StagePlan) -> list[Op]:
    """ConvNeXt: the downsampling layer at one index, the stage's blocks as a sequence at the next."""
    return [*_leading(stage), Sequence(numbered(list(stage.ops)))]


def _convnext_place(plan: Plan, key: str) -> str:
    parts = key.split(".")
    if parts[0] == "features" and len(parts) > 1:
        for section in plan.sections:
            if any(name == parts[1] for name, _ in section.ops):
                if not section.name.startswith("stage"):
                    return f"the {section.name}"
                blocks = section.ops[-1][0] == parts[1] and len(parts) > 2
                return _stage_block(section.name[5:], parts[2] if blocks else "")
    return "the head"


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "resnet",
            "torchvision's ResNet: conv1, bn1, maxpool, layer1..N, fc",
            "fc",
            InitLaw("he_fan_out", "torch"),
            _resnet,
            _resnet_place,
        ),
        Layout(
            "vgg",
            "torchvision's VGG: features.N, avgpool, classifier.N",
            None,
            InitLaw("he_fan_out", "normal"),
            _vgg,
            _features_place,
        ),
        Layout(
            "regnet",
            "torchvision's RegNet: stem, trunk_output.blockN.blockN-J, fc",
            "fc",
            InitLaw("he_fan_out", "normal"),
            _regnet,
            _regnet_place,
        ),
        Layout(
            "convnext",
            "torchvision's ConvNeXt: features.N (stem, stages, downsampling layers), avgpool, classifier.N",
            None,
            InitLaw("trunc_normal", "trunc_normal"),
            _features(_blocks_after_transition),
            _convnext_place,
            head_norm=True,
        ),
        Layout(
            "mobilenet",
            "torchvision's MobileNetV2: features.N (the stem, each block, the head's conv), classifier.N",
            None,
            InitLaw("he_fan_out", "normal"),
            _features(_by_block),
            _features_place,
        ),
        Layout(
            "efficientnet",
            "torchvision's EfficientNet: features.N (the stem, each stage, the head's conv), classifier.N",
            None,
            InitLaw("he_fan_out", "uniform_out"),
            _features(_by_stage),
            _features_place,
        ),
    )
}


def init_laws(plan: Plan) -> tuple[InitLaw, dict[tuple[str, ...], InitLaw]]:
    """The network's initialisation law, and the module paths whose modules follow another one.

    A stage's modules (its blocks, and its downsampling layer where it has one) follow the law of the family
    its block kind comes from, so that a ConvNeXt stage in a ResNet starts as ConvNeXt's blocks do; the stem
    and the head follow the network's family (its layout). A network of one family has no exceptions.
    """
    network = LAYOUTS[plan.family].init
    by_op = {
        id(op): LAYOUTS[BLOCKS[section.block].family].init
        for section in plan.sections
        if section.block
        for _, op in section.ops
    }
    exceptions: dict[tuple[str, ...], InitLaw] = {}

    def walk(items: Items, path: tuple[str, ...]) -> None:
        for name, op in items:
            here = (*path, name)
            law = by_op.get(id(op))
            if law is None:
                walk(children(op), here)
            elif law != network:
                exceptions[here] = law

    walk(plan.children, ())
    return network, exceptions
