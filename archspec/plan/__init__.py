"""The plan: a validated spec resolved into its layers, through registries of generators, stems, blocks,
heads and module layouts. Torch-free; the builder and the counter both read it."""

from archspec.plan.load import InputSize, Source, load_plan, plan_document
from archspec.plan.ops import Plan, Section
from archspec.plan.planner import make_plan
from archspec.plan.walker import PlanError, PlanProblem

__all__ = [
    "InputSize",
    "Plan",
    "PlanError",
    "PlanProblem",
    "Section",
    "Source",
    "load_plan",
    "make_plan",
    "plan_document",
]
