"""Rules that span fields: which block kinds a knob shapes, what a stem takes, which families mix.

Each problem names the field at fault (a stage's own field, or the network-level field its
stages inherit), so `archspec validate` points at its line. The facts come from the registries
of blocks and stems; nothing here is specific to one kind.
"""

from __future__ import annotations

from archspec.lang.blocks import block_name, kinds_taking, resolve_params
from archspec.lang.schema import KNOBS, Spec, SqueezeExcite, Stage
from archspec.plan.blocks import BLOCKS, BlockKind
from archspec.plan.stems import stem_problems
from archspec.plan.walker import PlanProblem

# The network's fields with their defaults, in the model's order, read once (every network planned is checked).
_SPEC_DEFAULTS = {name: info.default for name, info in Spec.model_fields.items()}
_SPEC_FIELDS = tuple(_SPEC_DEFAULTS)


def _network_sets(spec: Spec, knob: str) -> bool:
    """Whether the network's flat `knob` differs from the value every spec has by default (`groups: 1` and
    `se: false` say what the default says)."""
    value = getattr(spec, knob)
    if value is None or value is False or (knob == "groups" and value == 1):
        return False
    return bool(value != _SPEC_DEFAULTS[knob])


def _inherits(stage: Stage, knob: str) -> bool:
    if knob in ("groups", "group_width"):
        return stage.groups is None and stage.group_width is None
    return getattr(stage, knob) is None


def _family_problem(spec: Spec, stages: tuple[Stage, ...], kinds: list[BlockKind]) -> list[PlanProblem]:
    """Stages whose kind the network's layout (the first stage's family) cannot place."""
    family = kinds[0].layout_family(resolve_params(spec, stages[0]))
    for i, kind in enumerate(kinds):
        if kind.family == family or family in kind.joins:
            continue
        path = ("stages", i, "block") if stages[i].block else ("block",)
        others = [k.name for k in BLOCKS.values() if k.family == family or family in k.joins]
        listed = others[0] if len(others) == 1 else ", ".join(others[:-1]) + " or " + others[-1]
        # Name the kind that set the layout; list what else it takes only where that says more.
        takes = (
            "" if others == [kinds[0].name] else f"; a network that opens with {kinds[0].name} stages takes {listed}"
        )
        message = (
            f"{kind.name} stages cannot be mixed with {kinds[0].name} stages in one network (their module layouts "
            f"differ{takes})"
        )
        if kind.family in kinds[0].joins:  # the other order makes a network: say so
            message = (
                f"{kind.name} stages cannot follow {kinds[0].name} stages (the first stage's kind sets the module "
                f"layout); {kinds[0].name} stages may follow {kind.name} stages"
            )
        return [PlanProblem(path, message, key=True)]
    return []


def rule_problems(spec: Spec, stages: tuple[Stage, ...]) -> list[PlanProblem]:
    """Every cross-field problem of a spec whose stages (generators expanded) are `stages`."""
    problems: list[PlanProblem] = []
    kinds = [BLOCKS[block_name(stage.block) or block_name(spec.block) or ""] for stage in stages]
    problems += _family_problem(spec, stages, kinds)
    refused = frozenset.intersection(*(kind.refuses for kind in kinds))
    for name in sorted(refused, key=_SPEC_FIELDS.index):
        if getattr(spec, name):
            problems.append(
                PlanProblem((name,), f"{name} shapes residual blocks; a {kinds[0].name} network has none", key=True)
            )
    written = spec.model_fields_set  # a knob not written has its default, which sets nothing
    for knob in KNOBS:
        if knob not in written or knob in refused or not _network_sets(spec, knob):
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
    problems += _mapping_problems(spec.block, ("block",))
    for i, (stage, kind) in enumerate(zip(stages, kinds, strict=True)):
        # A stage's knobs default to None (its network's): only those it writes can be at fault.
        written_knobs = () if stage.model_fields_set.isdisjoint(KNOBS) else KNOBS
        for knob in written_knobs:
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
        problems += _mapping_problems(stage.block, ("stages", i, "block"))
    if spec.zero_init_residual and "zero_init_residual" not in refused and not any(kind.residual for kind in kinds):
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
    if spec.drop_path and "drop_path" not in refused and not any(kind.residual for kind in kinds):
        problems.append(
            PlanProblem(
                ("drop_path",),
                "drop_path drops residual branches, but this spec has no residual blocks (plain blocks have no "
                "shortcut)",
                key=True,
            )
        )
    problems += _generated_knob_problems(spec, stages)
    problems += _avg_down_problems(spec, stages, kinds) if "avg_down" not in refused else []
    problems += _unused_norm_problems(spec, stages, kinds)
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


def _unused_norm_problems(spec: Spec, stages: tuple[Stage, ...], kinds: list[BlockKind]) -> list[PlanProblem]:
    """The network's `norm` (and `norm_groups`) would do nothing where the stem and every stage's blocks choose
    their own norm (a patchify stem's `stem.norm`, a kind with a `norm` knob of its own: ConvNeXt's)."""
    if spec.stem.type != "patchify" or not all("norm" in kind.knobs for kind in kinds):
        return []
    problems = []
    for knob in ("norm", "norm_groups"):
        if getattr(spec, knob) != Spec.model_fields[knob].default:
            message = (
                f"{knob} sets the network's norm, which nothing here uses: the patchify stem and the "
                f"{', '.join(sorted({kind.name for kind in kinds}))} blocks choose their own (stem.norm, block.norm)"
            )
            problems.append(PlanProblem((knob,), message, key=True))
    return problems


# The network knobs a generator's stages carry themselves, and the rule's field that sets each.
_GENERATED = {"group_width": "group_width", "groups": "group_width", "se": "se_ratio", "bottleneck_ratio": None}


def _generated_knob_problems(spec: Spec, stages: tuple[Stage, ...]) -> list[PlanProblem]:
    """A network knob that a generator's stages would never read: each generated stage writes its own (group
    width, squeeze-and-excitation), or the rule has fitted the widths to its own bottleneck_ratio."""
    if isinstance(spec.stages, list):
        return []
    written: list[tuple[str, tuple[str, ...]]] = [
        (knob, (knob,)) for knob in _GENERATED if knob in spec.model_fields_set and _network_sets(spec, knob)
    ]
    if spec.block is not None and not isinstance(spec.block, str):
        block = spec.block
        written += [
            (knob, ("block", knob))
            for knob in _GENERATED
            if knob in block.model_fields_set and getattr(block, knob) not in (None, False, 1.0)
        ]
    problems = []
    for knob, path in written:
        field = _GENERATED[knob]
        if field is None:
            message = (
                f"the regnet generator fits its stages' widths to its own {knob}; write it there (stages.regnet.{knob})"
            )
        elif all(not _inherits(stage, knob) for stage in stages):
            message = (
                f"the regnet generator gives every stage its own {field.removesuffix('_ratio')}, so the network's "
                f"{knob} is never used; write it in the generator (stages.regnet.{field})"
            )
        else:
            continue  # a stage that does not write it takes the network's value
        problems.append(PlanProblem(path, message, key=True))
    return problems


def _mapping_problems(block: object, path: tuple[str | int, ...]) -> list[PlanProblem]:
    """The exclusive pairs inside a `block:` mapping."""
    if block is None or isinstance(block, str):
        return []
    return _exclusive(block, path) + _se_problems(getattr(block, "se", None), (*path, "se"))


def _exclusive(fields: object, prefix: tuple[str | int, ...]) -> list[PlanProblem]:
    if getattr(fields, "groups", None) is not None and getattr(fields, "group_width", None) is not None:
        return [
            PlanProblem(
                (*prefix, "group_width"),
                "group_width and groups are exclusive: give the channels per group or the number of groups, not both",
                key=True,
            )
        ]
    return []


def _se_problems(se: SqueezeExcite | bool | None, path: tuple[str | int, ...]) -> list[PlanProblem]:
    if se is None or se is False or not isinstance(se, SqueezeExcite) or se.ratio is None:
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
