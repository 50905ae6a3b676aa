"""`archspec fit`: scale a spec's depths and widths until its FLOPs (or parameters) reach a target.

The search is analytic (every candidate is planned and counted, no torch):
1. one factor for all stages: depths x d (rounded, at least 1), widths x w (rounded to a multiple of
   8, or of the stage's group width where it has one; the stem's width follows, and equals the first
   stage's where the spec's first stage keeps the stem's width, so no layer is added between them); with `both`,
   d = f^(1/3) and w is solved for, so that d * w^2 (what FLOPs grow with) makes up the factor f;
2. then one stage at a time: the change of one block or one width step that brings the counts
   closest to the target, until no change helps.
The result is written as `extends: SPEC` plus the fields that changed: the stage list (a list is
replaced whole by `extends`) and the stem's width.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import yaml

from archspec.counting.analytic import Complexity, complexity
from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.lang.sources import load_document, locate, stock_dir
from archspec.lang.yamldoc import from_mapping
from archspec.plan.blocks import BLOCKS, stage_knobs
from archspec.plan.load import load_plan, plan_document
from archspec.plan.ops import Plan
from archspec.plan.stems import NO_STEM, STEMS
from archspec.space.constraints import format_quantity, parse_quantity
from archspec.space.results import FitResult

Scale = Literal["depth", "width", "both"]
TOLERANCE = 0.02  # the result is within 2% of every target
_QUANT = 8  # widths without a group width are multiples of 8
# Factors tried by the first search, and how finely it bisects between them.
_FACTOR_RANGE = (1 / 256, 256.0)
_BISECTIONS = 40
_MAX_STEPS = 400


@dataclass(frozen=True)
class Shape:
    """What fit changes: every stage's depth and width, and the stem's width (None: no stem width)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    stem: int | None


class _Spec:
    """The spec being scaled: its resolved data, its stages as written, and a memo of counted shapes."""

    def __init__(self, source: str, plan: Plan, data: dict[str, Any]):
        self.source = source
        self.plan = plan
        self.data = data
        self.stages = [stage.model_dump(mode="json", exclude_unset=True) for stage in plan.stages]
        self.quanta = [_quantum(plan, i) for i in range(len(plan.stages))]
        stem = plan.spec.stem
        self.stem = None if stem.type == NO_STEM else (stem.width or STEMS[stem.type].width)
        self.base = Shape(tuple(s.depth for s in plan.stages), tuple(s.width for s in plan.stages), self.stem)
        # Where the first stage keeps the stem's width (ConvNeXt, basic ResNets), the stem follows its width:
        # apart, the stage would open with a layer the spec does not have (a projection, a downsampling layer).
        first = next((section for section in plan.sections if section.name == "stage1"), None)
        self.tied = first is not None and self.stem == first.in_channels == first.out_channels == self.base.widths[0]
        self.counted: dict[Shape, Complexity | None] = {}

    def shape(self, depths: tuple[int, ...], widths: tuple[int, ...], stem: int | None) -> Shape:
        """The shape with these depths and widths, its stem following the first stage where they are tied."""
        return Shape(depths, widths, widths[0] if self.tied else stem)

    def changes(self, shape: Shape) -> dict[str, Any]:
        """The fields a child spec writes over this one to have `shape`."""
        stages = [
            {**stage, "depth": depth, "width": width}
            for stage, depth, width in zip(self.stages, shape.depths, shape.widths, strict=True)
        ]
        changed: dict[str, Any] = {}
        if shape.stem is not None and shape.stem != self.stem:
            changed["stem"] = {"width": shape.stem}
        changed["stages"] = stages
        return changed

    def count(self, shape: Shape) -> Complexity | None:
        """The counts of `shape`, None where it is not a valid network."""
        if shape not in self.counted:
            data = copy.deepcopy(self.data)
            changes = self.changes(shape)
            if "stem" in changes:
                data.setdefault("stem", {}).update(changes["stem"])
            data["stages"] = changes["stages"]
            try:
                self.counted[shape] = complexity(plan_document(from_mapping(data)))
            except SpecError:
                self.counted[shape] = None
        return self.counted[shape]


def _quantum(plan: Plan, index: int) -> int:
    """The step of a stage's width: its group width (times a RegNet block's bottleneck ratio), else 8."""
    params = stage_knobs(plan.spec, plan.stages[index])
    return BLOCKS[params.type].width_quantum(params) or _QUANT


def _scaled(spec: _Spec, depth: float, width: float) -> Shape:
    base = spec.base
    depths = tuple(max(1, round(d * depth)) for d in base.depths)
    widths = tuple(max(q, round(w * width / q) * q) for w, q in zip(base.widths, spec.quanta, strict=True))
    stem = None if base.stem is None else max(_QUANT, round(base.stem * width / _QUANT) * _QUANT)
    return spec.shape(depths, widths, stem)


def _error(counts: Complexity | None, targets: dict[str, float]) -> float:
    """The largest |log(value / target)| over the targets (infinite for an invalid network)."""
    if counts is None:
        return math.inf
    return max(abs(math.log(max(getattr(counts, name), 1) / target)) for name, target in targets.items())


def _bisect(spec: _Spec, targets: dict[str, float], shape_at: Callable[[float], Shape]) -> Shape:
    """The factor whose shape comes closest to the first target, by bisection (counts grow with the factor)."""
    name, target = next(iter(targets.items()))
    lo, hi = (math.log(f) for f in _FACTOR_RANGE)
    best = spec.base
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        shape = shape_at(math.exp(mid))
        counts = spec.count(shape)
        if _error(counts, targets) < _error(spec.count(best), targets):
            best = shape
        if counts is not None and getattr(counts, name) < target:
            lo = mid
        else:
            hi = mid
    return best


def _neighbours(spec: _Spec, shape: Shape, scale: Scale) -> list[Shape]:
    """Every shape one block or one width step away, one stage (or the stem) at a time."""
    found = []
    if scale in ("width", "both") and shape.stem is not None and not spec.tied:
        found += [
            Shape(shape.depths, shape.widths, width)
            for width in (shape.stem - _QUANT, shape.stem + _QUANT)
            if width >= _QUANT
        ]
    for i in range(len(shape.depths)):
        if scale in ("depth", "both"):
            for step in (-1, 1):
                depth = shape.depths[i] + step
                if depth >= 1:
                    depths = (*shape.depths[:i], depth, *shape.depths[i + 1 :])
                    found.append(spec.shape(depths, shape.widths, shape.stem))
        if scale in ("width", "both"):
            q = spec.quanta[i]
            for step in (-q, q):
                width = shape.widths[i] + step
                if width >= q:
                    widths = (*shape.widths[:i], width, *shape.widths[i + 1 :])
                    found.append(spec.shape(shape.depths, widths, shape.stem))
    return found


def _descend(spec: _Spec, shape: Shape, targets: dict[str, float], scale: Scale) -> Shape:
    """Take the best step while it brings the counts closer to the targets: one change, or where no one
    change helps and the targets are still missed, two (one stage up, another down)."""
    error = _error(spec.count(shape), targets)
    for _ in range(_MAX_STEPS):
        if error <= math.log1p(TOLERANCE / 4):
            break
        near = _neighbours(spec, shape, scale)
        best_error, best = min(
            ((_error(spec.count(s), targets), s) for s in near), key=lambda item: item[0], default=(math.inf, shape)
        )
        if best_error >= error and error > math.log1p(TOLERANCE):
            pairs = {t for s in near for t in _neighbours(spec, s, scale)}
            best_error, best = min(
                ((_error(spec.count(s), targets), s) for s in pairs),
                key=lambda item: item[0],
                default=(math.inf, shape),
            )
        if best_error >= error:
            break
        shape, error = best, best_error
    return shape


def _search(spec: _Spec, targets: dict[str, float], scale: Scale, factor: float) -> Shape:
    """The one-factor shape, then the steps from it. For `both` the depth factor is f^(1/3); where that
    misses, a depth factor a step of sqrt(2) lower, then higher, is tried, and the closest result kept."""
    if scale == "depth":
        return _descend(spec, _bisect(spec, targets, lambda f: _scaled(spec, f, 1.0)), targets, scale)
    if scale == "width":
        return _descend(spec, _bisect(spec, targets, lambda f: _scaled(spec, 1.0, f)), targets, scale)
    found = []
    for k in (0, -1, 1):
        depth = factor ** (1 / 3) * 2 ** (k / 2)
        shape = _descend(spec, _bisect(spec, targets, partial(_scaled, spec, depth)), targets, scale)
        if _error(spec.count(shape), targets) <= math.log1p(TOLERANCE / 4):
            return shape
        found.append(shape)
    return min(found, key=lambda shape: _error(spec.count(shape), targets))


def parse_target(text: str, option: str) -> float:
    """`2G` -> 2e9 for --flops or --params; a usage error (exit 2) for anything else."""
    try:
        value = parse_quantity(text)
        reason = "" if value > 0 else "expected a positive number with an optional K, M, G or T, like 2G"
    except ValueError as exc:
        value, reason = 0.0, str(exc)
        if "too large" not in reason:
            reason = "expected a positive number with an optional K, M, G or T, like 2G"
    if reason:
        raise SpecError(Problem(Mark(shorten(f"{option} {text}", 80)), option.lstrip("-"), reason), code=2)
    return value


def _parent_ref(source: str, out: Path | None) -> tuple[str, Path]:
    """How the written spec names its parent (the stock name, or the path relative to the written file), and
    the file that name reaches from there: always the file that was counted, even where a file of the stock
    name lies beside the output."""
    path = locate(source)
    assert path is not None  # the spec was loaded from it
    written = (out if out is not None else Path("spec.yaml")).absolute()
    if path.resolve().parent == stock_dir().resolve() and source == path.stem:
        reached = locate(source, written)
        if reached is not None and reached.resolve() == path.resolve():
            return source, reached
    # Relative to the written file's folder as the file system reaches it (through any symbolic link).
    ref = os.path.relpath(path.resolve(), written.parent.resolve())
    reached = locate(ref, written)
    assert reached is not None and reached.resolve() == path.resolve(), "fit: the parent's path does not reach it"
    return ref, reached


def _refuse_self(source: str, out: Path | None) -> None:
    """The written spec extends `source`: writing it over `source` would make a spec that extends itself."""
    path = locate(source)
    if out is None or path is None:
        return
    try:
        same = out.exists() and os.path.samefile(out, path)
    except OSError:
        same = False
    if same:
        raise SpecError(
            Problem(
                Mark(shorten(str(out), 200)),
                "--out",
                "is the spec being fitted: the fitted spec extends it, so write it to another file",
            ),
            code=2,
        )


def _label(targets: dict[str, float]) -> str:
    """`2gflops`, `10mparams`: a name part for the targets."""
    parts = []
    for name, value in targets.items():
        for scale, unit in ((1e12, "t"), (1e9, "g"), (1e6, "m"), (1e3, "k"), (1, "")):
            if value >= scale:
                parts.append(f"{value / scale:g}{unit}{name}")
                break
    return "_".join(parts).replace(".", "p")


def fit(
    source: str,
    *,
    flops: float | None = None,
    params: float | None = None,
    scale: Scale = "both",
    out: Path | None = None,
) -> FitResult:
    """Scale `source` to the targets; a located SpecError if no shape comes within 2% of them."""
    targets = {name: value for name, value in (("flops", flops), ("params", params)) if value is not None}
    if not targets:
        raise SpecError(
            Problem(Mark("--flops / --params"), "flops", "give a target: --flops, --params or both"), code=2
        )
    _refuse_self(source, out)
    doc = load_document(source)
    plan = plan_document(doc)
    spec = _Spec(source, plan, doc.data)
    base = spec.count(spec.base)
    assert base is not None
    name, target = next(iter(targets.items()))
    shape = _search(spec, targets, scale, target / getattr(base, name))
    counts = spec.count(shape)
    misses = {key: getattr(counts, key) / value - 1 for key, value in targets.items()} if counts is not None else {}
    if counts is None or any(abs(miss) > TOLERANCE for miss in misses.values()):
        raise _unreachable(doc, plan, targets, counts, misses, scale)
    return _result(spec, doc.source, shape, counts, targets, scale, out)


def _unreachable(
    doc: Any, plan: Plan, targets: dict[str, float], counts: Complexity | None, misses: dict[str, float], scale: Scale
) -> SpecError:
    how = {"depth": "depth alone", "width": "width alone", "both": "depth and width"}[scale]
    wanted = " and ".join(f"{format_quantity(value)} {key}" for key, value in targets.items())
    if counts is None:
        closest = "no scaled network was valid"
    else:
        closest = "the closest has " + ", ".join(
            f"{format_quantity(getattr(counts, key))} {key} ({miss:+.1%})" for key, miss in misses.items()
        )
    hint = "; try --scale width or both" if scale == "depth" else "; try --scale both" if scale == "width" else ""
    message = f"cannot bring {plan.spec.name} within 2% of {wanted} by scaling {how}: {closest}{hint}"
    return SpecError(Problem(doc.mark_for(("stages",)), "stages", message))


def _result(
    spec: _Spec, shown: str, shape: Shape, counts: Complexity, targets: dict[str, float], scale: Scale, out: Path | None
) -> FitResult:
    base = spec.count(spec.base)
    assert base is not None
    parent, parent_file = _parent_ref(spec.source, out)
    name = f"{spec.plan.spec.name}_{_label(targets)}"
    reached = ", ".join(
        f"{getattr(counts, key):,} {key} ({getattr(counts, key) / value - 1:+.2%} of {format_quantity(value)})"
        for key, value in targets.items()
    )
    how = {"depth": "depth", "width": "width", "both": "depth and width"}[scale]
    wanted = ", ".join(f"{format_quantity(value)} {key}" for key, value in targets.items())
    description = f"{spec.plan.spec.name} scaled by {how} to {wanted} (archspec fit): {reached}."
    body: dict[str, Any] = {"extends": parent, "name": name, "description": description, **spec.changes(shape)}
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    # The text as a child of the parent, through `extends`, must count as the shape did.
    check = yaml.safe_load(text)
    check["extends"] = str(parent_file.absolute())
    again = complexity(load_plan(check))
    assert (again.flops, again.params) == (counts.flops, counts.params), (
        "fit: the written spec does not count as the fitted one"
    )
    return FitResult(
        source=shown,
        name=name,
        scale=scale,
        target_flops=None if "flops" not in targets else round(targets["flops"]),
        target_params=None if "params" not in targets else round(targets["params"]),
        depths=list(spec.base.depths),
        widths=list(spec.base.widths),
        new_depths=list(shape.depths),
        new_widths=list(shape.widths),
        flops=base.flops,
        params=base.params,
        new_flops=counts.flops,
        new_params=counts.params,
        new_macs=counts.macs,
        text=text,
    )
