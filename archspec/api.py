"""The public functions: spec in, plan, counts or module out."""

from __future__ import annotations

from archspec.counting.analytic import Complexity, complexity
from archspec.errors import Mark, Problem, SpecError, format_path
from archspec.lang.validate import validate
from archspec.plan.planner import Plan, PlanProblem, make_plan
from archspec.lang.schema import Spec
from archspec.lang.sources import apply_override, load_document


def _size_override(input_size) -> tuple[str, str]:
    """The override that sets the input size, and how messages name it."""
    if isinstance(input_size, int):
        return f"input.size={input_size}", f"--size {input_size}"
    height, width = input_size
    return f"input.size=[{height}, {width}]", f"--size {height}x{width}"


def load_plan(source, overrides=(), input_size=None) -> Plan:
    """Resolve a spec (path, stock name or mapping) into its plan; every problem is a located SpecError."""
    doc = load_document(source, overrides)
    if input_size is not None:
        doc = apply_override(doc, *_size_override(input_size))
    spec = validate(doc)
    try:
        return make_plan(spec)
    except PlanProblem as exc:
        raise SpecError(Problem(doc.mark_for(exc.path), format_path(exc.path), exc.message)) from None


def plan_from_spec(spec: Spec) -> Plan:
    """The plan of an already validated spec (problems are reported against the field path only)."""
    try:
        return make_plan(spec)
    except PlanProblem as exc:
        raise SpecError(Problem(Mark(f"<spec {spec.name}>"), format_path(exc.path), exc.message)) from None


def count(source, input_size=None, overrides=()) -> Complexity:
    """Analytic parameters, FLOPs (fvcore's convention), MACs, activations and depth; torch is not imported."""
    return complexity(load_plan(source, overrides, input_size))


def build(source, device="auto", overrides=(), input_size=None):
    """A freshly initialised `nn.Module` for the spec, on `device` ("auto": CUDA when there is one)."""
    from archspec.nn.builder import build_from_plan

    return build_from_plan(load_plan(source, overrides, input_size), device)
