"""A resolved spec as plain data and as YAML: what `archspec show` prints and `archspec diff` compares.

Generators are expanded (the stages are the ones the plan was made from); stage fields that
are unset (they take the network's value) are left out; the rest, defaults included, is
written out, so that the YAML validates back to the same network.
"""

from __future__ import annotations

from typing import Any

import yaml

from archspec.lang.schema import BlockParams, SqueezeExcite, Stage
from archspec.plan.ops import Plan


def _se(value: object) -> object:
    # Only the SE fields the spec set: a ratio and a reduction must not both come back.
    return value.model_dump(mode="json", exclude_unset=True) if isinstance(value, SqueezeExcite) else value


def _block(value: object) -> object:
    # Only the fields a `block:` mapping set: a knob it leaves out takes the network's value, which its model's
    # default (written out) would override.
    if isinstance(value, BlockParams):
        return {"type": value.kind_name(), **value.model_dump(mode="json", exclude_unset=True, exclude={"type"})}
    return value


def stage_data(stage: Stage) -> dict[str, Any]:
    data = stage.model_dump(mode="json", exclude_none=True)
    if "se" in data:
        data["se"] = _se(stage.se)
    if "block" in data:
        data["block"] = _block(stage.block)
    return data


def resolved_data(plan: Plan) -> dict[str, Any]:
    """The spec behind `plan` as plain data, generators expanded, `extends` resolved."""
    spec = plan.spec
    data = spec.model_dump(mode="json", exclude={"extends"})
    data["se"] = _se(spec.se)
    data["block"] = _block(spec.block)
    data["stages"] = [stage_data(stage) for stage in plan.stages]
    return data


def generator_note(plan: Plan) -> str | None:
    """`regnet {depth: 22, ...}` when the stages came from a generator, else None."""
    stages = plan.spec.stages
    if isinstance(stages, list):
        return None
    generators = stages.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    name, rule = next(iter(generators.items()))
    return f"{name} {yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip()}"


def spec_yaml(plan: Plan) -> str:
    """The resolved spec as YAML; a comment names the generator the stages were expanded from."""
    data = resolved_data(plan)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100).rstrip()
    note = generator_note(plan)
    if note is not None:
        text = text.replace("\nstages:\n", f"\n# stages expanded from the generator: {note}\nstages:\n", 1)
    return text
