"""Rules that span fields: which block kinds a knob shapes, what a stem takes, which families mix.

Each problem names the field at fault (a stage's own field, or the network-level field its
stages inherit), so `archspec validate` points at its line. The facts come from the registries
of blocks and stems; nothing here is specific to one kind.
"""

from __future__ import annotations

from collections.abc import Callable

from archspec.lang.schema import KNOBS, Spec, SqueezeExcite, Stage
from archspec.plan.blocks import BLOCKS
from archspec.plan.blocks.base import BlockKind
from archspec.plan.stems import stem_problems
from archspec.plan.walker import PlanProblem

# A network-level knob is "set" when it differs from the value every spec has by default.
_NETWORK_SET: dict[str, Callable[[object], bool]] = {
    "groups": lambda v: v not in (None, 1),
    "group_width": lambda v: v is not None,
    "width_per_group": lambda v: v != 64,
    "bottleneck_ratio": lambda v: v != 1.0,
    "expansion": lambda v: v is not None,
    "stride_in": lambda v: v != "3x3",
    "avg_down": bool,
    "se": bool,
    "preact": bool,
}
# What a VGG network cannot have: it has no residual blocks.
_RESIDUAL_ONLY = ("se", "avg_down", "drop_path", "output_stride", "preact", "zero_init_residual")


def kinds_taking(knob: str) -> str:
    """`bottleneck and regnet`: the block kinds a knob shapes, in registry order."""
    names = [kind.name for kind in BLOCKS.values() if knob in kind.knobs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _inherits(stage: Stage, knob: str) -> bool:
    if knob in ("groups", "group_width"):
        return stage.groups is None and stage.group_width is None
    return getattr(stage, knob) is None


def rule_problems(spec: Spec, stages: tuple[Stage, ...]) -> list[PlanProblem]:
    """Every cross-field problem of a spec whose stages (generators expanded) are `stages`."""
    problems: list[PlanProblem] = []
    kinds = [BLOCKS[stage.block or spec.block] for stage in stages]
    family = kinds[0].family
    for i, kind in enumerate(kinds):
        if kind.family != family:
            path = ("stages", i, "block") if stages[i].block else ("block",)
            pair = {kind.family, family}
            if "vgg" in pair:
                message = "vgg stages cannot be mixed with residual or plain stages in one network"
            else:
                message = (
                    "regnet stages cannot be mixed with basic, bottleneck or plain stages in one network "
                    "(their module layouts differ)"
                )
            problems.append(PlanProblem(path, message, key=True))
            break
    if family == "vgg":
        for name in _RESIDUAL_ONLY:
            if getattr(spec, name):
                problems.append(
                    PlanProblem((name,), f"{name} shapes residual blocks; a vgg network has none", key=True)
                )
    for knob, is_set in _NETWORK_SET.items():
        if (family == "vgg" and knob in _RESIDUAL_ONLY) or not is_set(getattr(spec, knob)):
            continue
        bad = sorted(
            {
                kind.name
                for stage, kind in zip(stages, kinds, strict=True)
                if _inherits(stage, knob) and knob not in kind.knobs | kind.tolerates
            }
        )
        if bad:
            problems.append(
                PlanProblem(
                    (knob,),
                    f"{knob} shapes {kinds_taking(knob)} blocks only; this spec also has {', '.join(bad)} blocks",
                    key=True,
                )
            )
    problems += _exclusive(spec, ())
    problems += _se_problems(spec.se, ("se",))
    for i, (stage, kind) in enumerate(zip(stages, kinds, strict=True)):
        for knob in KNOBS:
            value = getattr(stage, knob)
            if value is None or (value is False and knob == "se") or knob in kind.knobs | kind.tolerates:
                continue
            problems.append(
                PlanProblem(
                    ("stages", i, knob),
                    f"{knob} shapes {kinds_taking(knob)} blocks only; stage {i + 1} has {kind.name} blocks",
                    key=True,
                )
            )
        problems += _exclusive(stage, ("stages", i))
        problems += _se_problems(stage.se, ("stages", i, "se"))
    if spec.zero_init_residual and family != "vgg" and not any(kind.residual for kind in kinds):
        problems.append(
            PlanProblem(
                ("zero_init_residual",),
                (
                    "zero_init_residual starts residual branches at zero, but this spec has no residual blocks (plain "
                    "blocks have no shortcut)"
                ),
                key=True,
            )
        )
    if spec.drop_path and family != "vgg" and not any(kind.residual for kind in kinds):
        problems.append(
            PlanProblem(
                ("drop_path",),
                "drop_path drops residual branches, but this spec has no residual blocks (plain blocks have no "
                "shortcut)",
                key=True,
            )
        )
    problems += _avg_down_problems(spec, stages, kinds) if family != "vgg" else []
    problems += [PlanProblem(path, message, key=True) for path, message in stem_problems(spec.stem)]
    return problems


def _avg_down_problems(spec: Spec, stages: tuple[Stage, ...], kinds: list[BlockKind]) -> list[PlanProblem]:
    """avg_down pools before a projection shortcut: it does nothing in a stage whose shortcut is option A (zero
    padding, no projection) or that has no shortcut at all."""

    def projects(stage: Stage, kind: BlockKind) -> bool:
        return kind.residual and (stage.shortcut or spec.shortcut) != "A"

    problems = [
        PlanProblem(
            ("stages", i, "avg_down"),
            f"avg_down pools before a projection shortcut, but stage {i + 1}'s shortcut option A has none; use "
            "shortcut B or C, or leave avg_down out",
            key=True,
        )
        for i, (stage, kind) in enumerate(zip(stages, kinds, strict=True))
        if stage.avg_down and kind.residual and not projects(stage, kind)
    ]
    inheriting = [(stage, kind) for stage, kind in zip(stages, kinds, strict=True) if stage.avg_down is None]
    if spec.avg_down and inheriting and not any(projects(stage, kind) for stage, kind in inheriting):
        problems.append(
            PlanProblem(
                ("avg_down",),
                "avg_down pools before projection shortcuts, but no stage that takes it has one (shortcut option A "
                "pads with zeros; plain blocks have no shortcut); use shortcut B or C, or leave avg_down out",
                key=True,
            )
        )
    return problems


def _exclusive(fields: Spec | Stage, prefix: tuple[str | int, ...]) -> list[PlanProblem]:
    if fields.groups is not None and fields.group_width is not None:
        return [
            PlanProblem(
                (*prefix, "group_width"),
                "group_width and groups are exclusive: give the channels per group or the number of groups, not both",
                key=True,
            )
        ]
    return []


def _se_problems(se: SqueezeExcite | bool | None, path: tuple[str | int, ...]) -> list[PlanProblem]:
    if not isinstance(se, SqueezeExcite) or se.ratio is None:
        return []
    return [
        PlanProblem(
            (*path, name),
            f"{name} and ratio are exclusive: the reduced width is either a ratio or width / reduction",
            key=True,
        )
        for name in ("reduction", "divisor")
        if name in se.model_fields_set
    ]
