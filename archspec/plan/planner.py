"""Validated spec -> resolved plan: every layer with its widths, stride and spatial size.

This is the only place that does width and stride arithmetic, through the
registries it dispatches to: generators (`generators`), stems (`stems`), block
kinds (`blocks`), the head (`heads`) and module layouts (`layouts`). The builder
and the counter read the plan it returns, so they can never disagree about what
the network is. Nothing here imports torch.
"""

from __future__ import annotations

from archspec.lang.blocks import SHARED_KNOBS
from archspec.lang.schema import Spec
from archspec.plan.blocks import BLOCKS, StagePlan, stage_knobs
from archspec.plan.generators import expand_stages, scale_spec
from archspec.plan.heads import plan_head, plan_head_conv
from archspec.plan.layouts import LAYOUTS
from archspec.plan.ops import Op, Plan, Section
from archspec.plan.rules import rule_problems
from archspec.plan.shapes import as_size
from archspec.plan.stems import plan_stem
from archspec.plan.walker import PlanError, PlanProblem, Walker


def make_plan(spec: Spec) -> Plan:
    """Resolve a validated spec into its plan; raise PlanError for an impossible network."""
    spec, stages = scale_spec(spec, expand_stages(spec.stages))
    problems = rule_problems(spec, stages)
    if problems:
        raise PlanError(problems)
    # A stage that writes no knob and no block of its own has the network's parameters: resolved once.
    knobs = []
    inherited = None
    for stage in stages:
        if stage.block is not None or not stage.model_fields_set.isdisjoint(SHARED_KNOBS):
            knobs.append(stage_knobs(spec, stage))
            continue
        if inherited is None:
            inherited = stage_knobs(spec, stage)
        knobs.append(inherited)
    kinds = [BLOCKS[k.type] for k in knobs]
    layout = LAYOUTS[kinds[0].layout_family(knobs[0])]
    features = spec.head.features
    for index in features or ():
        if index > len(stages):
            raise PlanError(
                PlanProblem(
                    ("head", "features"),
                    f"stage {index} does not exist: the network has stages 1 to {len(stages)} (0 is the stem)",
                )
            )
    walker = Walker(
        spec, total_blocks=sum(stage.depth for stage, kind in zip(stages, kinds, strict=True) if kind.family != "vgg")
    )
    stem = plan_stem(walker, preact_first=bool(getattr(knobs[0], "preact", False)))
    sections = (
        [
            Section(
                "stem",
                tuple(stem),
                in_channels=spec.input.channels,
                out_channels=walker.channels,
                stride=walker.total_stride,
                out_size=walker.size,
            )
        ]
        if stem
        else []
    )
    # A features-only backbone ends at the last stage it returns (as timm's features_only does).
    kept = max(features) if features else len(stages)
    planned: list[StagePlan] = []
    rows = []
    for i in range(kept):
        cin = walker.channels
        stage_plan = kinds[i].plan_stage(walker, i, stages[i], knobs[i], kinds[i].stage_stride(i, stages[i]))
        planned.append(stage_plan)
        rows.append((cin, walker.channels, stage_plan.stride, walker.size))
    # The head's conv, where it has one, sits among the stages in some layouts (MobileNetV2's `features`).
    head_in = walker.channels
    tail = plan_head_conv(walker) if features is None else []
    assembly = layout.assemble(stem, planned, tail)
    for i, (cin, cout, stride, size) in enumerate(rows):
        shortcut = str(getattr(knobs[i], "shortcut", "-")) if kinds[i].residual else "-"
        sections.append(
            Section(
                f"stage{i + 1}",
                assembly.stage_ops[i],
                stages[i].depth,
                knobs[i].type,
                shortcut,
                cin,
                cout,
                stride,
                size,
            )
        )

    def plan(
        children: tuple[tuple[str, Op], ...],
        taps: tuple[tuple[str, ...], ...] | None,
        shapes: tuple[tuple[int, ...], ...],
    ) -> Plan:
        return Plan(
            spec,
            stages,
            layout.name,
            spec.input.channels,
            as_size(spec.input.size),
            children,
            tuple(sections),
            taps,
            shapes,
        )

    if features is not None:
        taps: list[tuple[str, ...]] = []
        for index in features:
            if index == 0 and assembly.stem_tap is None:
                raise PlanError(
                    PlanProblem(("head", "features"), "feature 0 is the stem's output, but this spec has no stem")
                )
            tap = assembly.stem_tap if index == 0 else assembly.stage_taps[index - 1]
            assert tap is not None
            taps.append(tap)
        shapes: list[tuple[int, ...]] = []
        for index in features:
            section = sections[index - (0 if stem else 1)] if index else sections[0]
            shapes.append((section.out_channels, *section.out_size))
        return plan(tuple(assembly.children), tuple(taps), tuple(shapes))
    head = plan_head(
        walker,
        preact_last=bool(getattr(knobs[-1], "preact", False)),
        single_fc_name=layout.fc_name,
        norm=layout.head_norm,
    )
    sections.append(Section("head", tuple(tail) + tuple(head), in_channels=head_in, out_channels=spec.head.num_classes))
    children = tuple(assembly.children) + tuple(head)
    return plan(children, None, ((spec.head.num_classes,),))
