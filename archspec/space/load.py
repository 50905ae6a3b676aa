"""A space file -> `Space`: the spec with its distributions found, checked and located, and its constraints.

A space is read like a spec (YAML with line marks, `extends`, `--set`), then walked along the
spec's schema: a mapping where the schema expects a number, a name or a boolean is a
distribution; one anywhere else is an error at its place. The checks a spec gets run on
probes, specs made from the space's own values (every choice, both ends of every range),
so that a value no draw could use is reported at the line that wrote it.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from archspec.errors import Problem, SpecError, format_path
from archspec.lang.blocks import BLOCK_PARAMS
from archspec.lang.schema import GENERATORS, Spec, Stage, StageGenerators
from archspec.lang.sources import load_document
from archspec.lang.validate import unknown_key, validate
from archspec.lang.yamldoc import Document
from archspec.plan.load import file_order, locate
from archspec.space.constraints import Constraints
from archspec.space.distributions import KINDS, MODELS, Distribution
from archspec.space.located import Path, validate_model
from archspec.space.template import Slot, Space, StageTemplate, dynamic_parts, fill, located_document

# A number of stages past this is a typo in `count` (RegNetX draws have a dozen at most).
MAX_STAGES = 64
_TEMPLATE_KEYS = ("count", "each")


def is_space(doc: Document) -> bool:
    """Whether a resolved document is a space: it has `constraints`, or a distribution, or a stage template."""
    data = doc.data
    stages = data.get("stages")
    if "constraints" in data or (isinstance(stages, dict) and any(key in stages for key in _TEMPLATE_KEYS)):
        return True
    return _has_distribution(data)


def _has_distribution(node: object) -> bool:
    if isinstance(node, dict):
        return any(key in node for key in KINDS) or any(_has_distribution(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_distribution(value) for value in node)
    return False


def load_space(source: str | Document, overrides: Sequence[str] = ()) -> Space:
    """Read and check a space file (a path, or a resolved document); every problem is a located SpecError."""
    doc = source if isinstance(source, Document) else load_document(source, overrides)
    return space_from_document(doc)


def space_from_document(doc: Document) -> Space:
    """The space a resolved document describes: its constraints, its slots, checked on probes."""
    data = dict(doc.data)
    problems: list[Problem] = []
    constraints = Constraints.model_validate({})
    if "constraints" in data:
        raw = data.pop("constraints")
        if isinstance(raw, dict):
            try:
                constraints = validate_model(Constraints, raw, doc, ("constraints",))
            except SpecError as exc:
                problems += exc.problems
        else:
            problems.append(
                locate(
                    doc,
                    ("constraints",),
                    "expected a mapping of quantities to [low, high], for example {flops: [360M, 440M]}",
                )
            )
    walker = _Walker(doc)
    template = walker.mapping(data, Spec, ())
    problems += walker.problems
    problems += _tie_problems(doc, walker.slots)
    if problems:
        raise SpecError(sorted(problems, key=file_order))
    name = data.get("name") if isinstance(data.get("name"), str) else "space"
    space = Space(doc.source, str(name), template, tuple(walker.slots), constraints, doc, dynamic_parts(template))
    _probe(space)
    return space


# What the schema expects at a field, as far as distributions go.
Expected = Literal["number", "flag", "name", "model", "text", "list"]


def _strip(annotation: Any) -> Any:
    """The annotation without Annotated[...] and Optional[...] around it."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _expected(annotation: Any) -> tuple[Expected, type[BaseModel] | None]:
    """What a field takes: a number, a flag, a name (a Literal), a model (with the model), text, or a list."""
    annotation = _strip(annotation)
    if annotation in (int, float):
        return "number", None
    if annotation is bool:
        return "flag", None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        return ("number" if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else "name"), None
    if origin in (Union, types.UnionType):
        args = [_strip(arg) for arg in get_args(annotation)]
        models = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
        names = [arg for arg in args if get_origin(arg) is Literal and all(isinstance(v, str) for v in get_args(arg))]
        if models and names:
            return "name", None  # `block`: a kind's name, or its parameters mapping (drawn as a name)
        if models:
            return "model", models[0]  # `se`: a mapping is its settings, `false` turns it off
        if int in args:
            return "number", None  # `input.size`: one number or [height, width]
    return ("text" if annotation is str else "list"), None


_WORDS = {"name": "one of its names", "flag": "true or false", "number": "a number"}


class _Walker:
    """Finds the distributions of a space document along the spec's schema."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.slots: list[Slot] = []
        self.problems: list[Problem] = []

    def mapping(
        self,
        node: dict[str, Any],
        model: type[BaseModel],
        path: Path,
        *,
        stage: int | None = None,
        template: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = (*path, key)
            field = model.model_fields.get(key)
            if field is None:
                out[key] = value  # an unknown key: the probe's validation names it, with "did you mean"
            elif model is Spec and key == "stages":
                out[key] = self.stages(value)
            else:
                out[key] = self.value(value, field.annotation, here, stage=stage, template=template)
        return out

    def value(self, value: Any, annotation: Any, path: Path, *, stage: int | None, template: bool) -> Any:
        expected, model = _expected(annotation)
        if not isinstance(value, dict):
            return value
        kind = value.get("type")
        if expected == "name" and isinstance(kind, str) and kind in BLOCK_PARAMS and not any(k in value for k in KINDS):
            # `block: {type: mbconv, kernel: ...}`: a kind's parameters, whose fields may be drawn in turn.
            return self.mapping(value, BLOCK_PARAMS[kind], path, stage=stage, template=template)
        if expected in ("number", "flag", "name"):
            distribution = self.distribution(value, path, expected)
            if distribution is None:
                return value
            slot = Slot(path, distribution, stage, template)
            self.slots.append(slot)
            return slot
        if any(key in value for key in KINDS):
            if expected == "model":
                why = "it is a group of settings; draw the fields inside it"
            else:
                what = "text" if expected == "text" else "a list"
                why = f"only numbers, names and true or false can be; this field is {what}"
            self.problems.append(locate(self.doc, path, f"cannot be drawn from a distribution: {why}"))
            return value
        if model is not None:
            return self.mapping(value, model, path, stage=stage, template=template)
        return value

    def distribution(self, value: dict[str, Any], path: Path, expected: Expected) -> Distribution | None:
        kinds = [key for key in KINDS if key in value]
        if not kinds:
            unknown = next(iter(value), "")
            self.problems.append(
                locate(
                    self.doc, (*path, unknown), unknown_key(str(unknown), list(KINDS)) + " (a distribution)", key=True
                )
            )
            return None
        if len(kinds) > 1:
            message = f"a distribution is one of choice, range or log_range, not both `{kinds[0]}` and `{kinds[1]}`"
            self.problems.append(locate(self.doc, (*path, kinds[1]), message, key=True))
            return None
        model = MODELS[kinds[0]]
        try:
            distribution = validate_model(model, value, self.doc, path)
        except SpecError as exc:
            self.problems += exc.problems
            return None
        if expected != "number" and kinds[0] != "choice":
            self.problems.append(
                locate(
                    self.doc,
                    (*path, kinds[0]),
                    f"{kinds[0]} draws numbers; this field takes {_WORDS[expected]}: draw it with `choice`",
                    key=True,
                )
            )
            return None
        return distribution

    def stages(self, value: Any) -> Any:
        path: Path = ("stages",)
        if isinstance(value, list):
            return [
                self.mapping(item, Stage, (*path, i), stage=i) if isinstance(item, dict) else item
                for i, item in enumerate(value)
            ]
        if not isinstance(value, dict):
            return value
        if any(name in value for name in GENERATORS):
            out = dict(value)
            for name in GENERATORS:
                rule = value.get(name)
                if isinstance(rule, dict):
                    _, model = _expected(StageGenerators.model_fields[name].annotation)
                    assert model is not None
                    out[name] = self.mapping(rule, model, (*path, name))
            return out
        if any(key in value for key in _TEMPLATE_KEYS):
            return self.template(value, path)
        if any(key in value for key in KINDS):
            self.problems.append(
                locate(
                    self.doc,
                    path,
                    "cannot be drawn as a whole; draw the number of stages with `count` and their fields with `each`",
                )
            )
        return value

    def template(self, value: dict[str, Any], path: Path) -> Any:
        for key in value:
            if key not in _TEMPLATE_KEYS:
                self.problems.append(
                    locate(
                        self.doc,
                        (*path, key),
                        unknown_key(str(key), list(_TEMPLATE_KEYS)) + " (a stage template)",
                        key=True,
                    )
                )
        for key, what in (("count", "the number of stages"), ("each", "the fields every stage is drawn from")):
            if key not in value:
                self.problems.append(locate(self.doc, path, f"a stage template needs `{key}`: {what}", key=True))
        each, count = value.get("each"), value.get("count")
        if each is not None and not isinstance(each, dict):
            self.problems.append(
                locate(self.doc, (*path, "each"), "expected a mapping of stage fields, such as {depth: 2, width: 64}")
            )
            each = None
        fields = self.mapping(each, Stage, (*path, "each"), template=True) if each is not None else {}
        return StageTemplate(self.count(count, (*path, "count")) if count is not None else 1, fields)

    def count(self, value: Any, path: Path) -> int | Slot:
        if isinstance(value, dict):
            distribution = self.distribution(value, path, "number")
            if distribution is None:
                return 1
            bad = [
                v
                for _, v in distribution.probes()
                if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STAGES)
            ]
            grid = getattr(distribution, "grid", None)
            if bad or (distribution.kind != "choice" and (grid is None or not grid.integers)):
                self.problems.append(
                    locate(self.doc, path, f"the number of stages is drawn from integers from 1 to {MAX_STAGES}")
                )
                return 1
            slot = Slot(path, distribution)
            self.slots.append(slot)
            return slot
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_STAGES:
            return value
        self.problems.append(
            locate(self.doc, path, f"expected a number of stages from 1 to {MAX_STAGES}, or a distribution of them")
        )
        return 1


def _tie_problems(doc: Document, slots: list[Slot]) -> list[Problem]:
    """`shared` and `order` belong to stage fields, and every stage that ties a field ties it the same way."""
    problems: list[Problem] = []
    shared: dict[Path, Slot] = {}
    ordered: dict[Path, Slot] = {}
    for slot in slots:
        d = slot.distribution
        on_stage = slot.template or slot.stage is not None
        for name, active in (("shared", d.shared), ("order", d.order is not None)):
            if active and not on_stage:
                problems.append(
                    locate(
                        doc,
                        (*slot.path, name),
                        f"`{name}` ties a field across stages; this field is drawn once for the network",
                        key=True,
                    )
                )
        if not on_stage:
            continue
        if d.shared and slot.stage is not None:
            first = shared.setdefault(slot.tie, slot)
            if first is not slot and first.distribution != d:
                problems.append(
                    locate(
                        doc,
                        slot.path,
                        f"every stage that shares `{format_path(slot.tie)}` gives it the same distribution; "
                        f"stage {first.stage} gives another",
                    )
                )
        if d.order is not None:
            first = ordered.setdefault(slot.tie, slot)
            if first.distribution.order != d.order:
                problems.append(
                    locate(
                        doc,
                        (*slot.path, "order"),
                        f"every stage orders `{format_path(slot.tie)}` the same way; "
                        f"stage {first.stage} says {first.distribution.order}",
                        key=True,
                    )
                )
    return problems


# ---- probes: the spec's own checks on specs made from the space's values ----


Probes = dict[int, list[tuple[Path, Any]]]


def _probe_problems(space: Space, probes: Probes, probed: dict[int, int], count: int) -> list[Problem]:
    """The problems of the spec with each slot in `probed` (by id) at its probe of that index and every other
    slot at its first; located in the space file (built only for a spec that fails: it copies every mark)."""
    chosen: dict[Path, tuple[Path, Any]] = {}
    for slot in space.slots:
        sub, given = probes[id(slot)][probed.get(id(slot), 0)]
        at = slot.path + sub
        for stage in range(count) if slot.template else [None]:
            chosen[slot.spec_path(stage)] = (at, given)
    try:
        validate(Document(data=fill(space, lambda slot, stage: chosen[slot.spec_path(stage)][1], count), source=""))
        return []
    except SpecError:
        pass
    try:
        validate(located_document(space, chosen, count))
    except SpecError as exc:
        return exc.problems
    return []


def _first_count(space: Space) -> int:
    template = space.stage_template
    if template is None:
        return 0
    if isinstance(template.count, Slot):
        value = template.count.distribution.probes()[0][1]
        return int(value)
    return template.count


# Values checked one by one (below) after a round of them failed together, at most this many per space.
MAX_SINGLE_PROBES = 500


def _probe(space: Space) -> None:
    """Validate the spec each value of the space makes (the others at their first value); raise what fails.

    Checking every value alone costs values x size, quadratic in a large space; so round k checks the k-th
    value of every distribution at once, one validation per round. Only a round that fails is checked again
    value by value (at most MAX_SINGLE_PROBES in all), for the distributions at or around the fields it
    blames, so each problem is reported as the single value that causes it.
    """
    count = _first_count(space)
    probes: Probes = {id(slot): slot.distribution.probes() for slot in space.slots}
    problems = _probe_problems(space, probes, {}, count)
    seen = {(p.path, p.message) for p in problems}
    slots = [slot for slot in space.slots if slot is not space.count_slot()]
    budget = MAX_SINGLE_PROBES
    for k in range(1, max((len(probes[id(slot)]) for slot in slots), default=0)):
        present = [slot for slot in slots if len(probes[id(slot)]) > k]
        failed = _probe_problems(space, probes, {id(slot): k for slot in present}, count)
        blamed = [p.path for p in failed if (p.path, p.message) not in seen]
        if not blamed:
            continue
        for slot in [slot for slot in present if _blamed(slot, count, blamed)][:budget]:
            budget -= 1
            for found in _probe_problems(space, probes, {id(slot): k}, count):
                if (found.path, found.message) not in seen:
                    seen.add((found.path, found.message))
                    problems.append(found)
    if problems:
        raise SpecError(sorted(problems, key=file_order))


def _blamed(slot: Slot, count: int, paths: list[str]) -> bool:
    """Whether a problem at one of `paths` (dotted, in the spec) may come from `slot`'s value: at, above or
    below the field it fills."""
    own = [format_path(slot.spec_path(stage)) for stage in (range(count) if slot.template else [None])]
    return any(
        not path or mine == path or mine.startswith(path + ".") or path.startswith(mine + ".")
        for path in paths
        for mine in own
    )
