"""`archspec flops` and `archspec diff`: counts of several specs side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from archspec.counting.analytic import Complexity, complexity
from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.lang.refs import ModelRef, parse_model_ref
from archspec.plan import InputSize, Plan, load_plan
from archspec.plan.shapes import as_size
from archspec.report.results import CountsPair, FieldChange, FlopsRow, ModuleRow, Ratio, SpecDiff
from archspec.report.spec import resolved_data
from archspec.tools.paper import paper_figure

Say = Callable[[str], None]
# The input size torchvision and timm models are counted at unless --size says otherwise.
_LIBRARY_SIZE = (224, 224)


def _measure(plan: Plan, counter: str, force: bool) -> Complexity:
    if counter == "fvcore":
        from archspec.nn.fvcore_count import fvcore_complexity

        return fvcore_complexity(plan, force=force)
    return complexity(plan)


def _row(source: str, plan: Plan, counter: str, baseline: bool, force: bool) -> FlopsRow:
    c = _measure(plan, counter, force)
    return FlopsRow(
        name=plan.spec.name,
        source=source,
        baseline=baseline,
        input_size=list(c.input_size),
        layers=c.layers,
        params=c.params,
        flops=c.flops,
        macs=c.macs,
        activations=c.activations,
        flops_by_op=dict(c.flops_by_op),
        paper=paper_figure(plan),
        counter=counter,
    )


def _cannot_take(size: tuple[int, int]) -> str:
    return f"cannot take {size[0]}x{size[1]} inputs"


def _why_not(exc: Exception) -> str:
    """Why a library model refused an input, in words: a library's own assertion is a sentence (timm's "Input
    height (64) doesn't match model (224)."); torch's errors are C++ text about kernels and sizes."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, AssertionError) and text:
        return shorten(text, 120)
    return "its feature maps would shrink below its kernels' size, or it needs another input size"


def _external_row(ref: ModelRef, size: tuple[int, int], baseline: bool, force: bool) -> FlopsRow:
    """A torchvision or timm model as the library builds it (fresh weights), counted with fvcore at `size`
    (one 3-channel image, eval mode)."""
    import torch

    from archspec.nn.fvcore_count import fvcore_counts
    from archspec.nn.library import build_library_model

    model = build_library_model(ref, "cpu", force=force)
    try:
        counts = fvcore_counts(model, torch.zeros(1, 3, *size))
    except MemoryError:
        raise
    except Exception as exc:  # too small for its pools (RuntimeError), or a fixed input size (timm asserts)
        message = f"{_cannot_take(size)}: {_why_not(exc)}"
        raise SpecError(Problem(Mark(str(ref)), "--size", message)) from None
    return FlopsRow(
        name=str(ref),
        source=str(ref),
        baseline=baseline,
        input_size=list(size),
        layers=None,
        params=counts.params,
        flops=counts.flops,
        macs=counts.macs,
        activations=counts.activations,
        flops_by_op=counts.flops_by_op,
        paper="",
        counter="fvcore",
    )


class _Model:
    """One row's model: a spec (planned once) or a library model (counted per input size)."""

    def __init__(self, source: str, option: str, overrides: Sequence[str] = (), input_size: InputSize | None = None):
        self.source = source
        self.ref = parse_model_ref(source, option)
        if self.ref is not None:
            from archspec.nn.library import check_known

            check_known(self.ref, option)
            self.name = str(self.ref)
            self.size = as_size(input_size) if input_size is not None else _LIBRARY_SIZE
            self.plan: Plan | None = None
        else:
            self.plan = load_plan(source, overrides=overrides, input_size=input_size)
            self.name = self.plan.spec.name
            self.size = self.plan.input_size

    def row(self, counter: str, baseline: bool, size: tuple[int, int] | None = None, force: bool = False) -> FlopsRow:
        if self.ref is not None:
            return _external_row(self.ref, size or self.size, baseline, force)
        assert self.plan is not None
        plan = self.plan if size is None or size == self.plan.input_size else load_plan(self.source, input_size=size)
        return _row(self.source, plan, counter, baseline, force)


def compare(
    specs: Sequence[str],
    *,
    baselines: Sequence[str] = ("vgg19",),
    overrides: Sequence[str] = (),
    input_size: InputSize | None = None,
    counter: str = "analytic",
    force: bool = False,
    progress: Say | None = None,
    note: Say | None = None,
    at_row_sizes: bool = True,
) -> list[FlopsRow]:
    """One row per spec (or `torchvision:NAME` / `timm:NAME` model), then one per baseline, each with its
    ratios to every baseline (`vs`).

    A ratio compares like with like: each baseline is counted at the row's own input size (a
    CIFAR net against VGG-19 at 32x32, not at 224x224). Where a baseline cannot take that
    size (its feature maps would vanish), the ratio is None and `note` is told why.
    Library models are counted with fvcore on the built model (their row says so); specs with
    `counter`. `force` skips the memory check before a model is built. `progress` hears about each
    count as it starts. A baseline is its own row unless a row is the very same network (same spec,
    no `--set`), which is then marked as the baseline. Each baseline's own row is given at every row's input
    size (`at_row_sizes`), or once at its own size (a chart of each network as it is meant to be used).
    """
    models = [_Model(source, "", overrides, input_size) for source in specs]
    # Baselines load at their own size first, so a misspelt name is still an error.
    own = {source: _Model(source, "--vs") for source in baselines}
    built_as_shipped = [model.name for model in models if model.ref is not None]
    if overrides and built_as_shipped and note:
        note(f"archspec: --set changes specs only; {', '.join(built_as_shipped)} counted as the library builds it")
    names = {source: model.name for source, model in own.items()}
    at_size: dict[tuple[str, tuple[int, int]], FlopsRow | None] = {}

    def baseline_at(source: str, size: tuple[int, int]) -> FlopsRow | None:
        key = (source, size)
        if key not in at_size:
            try:
                if progress:
                    progress(f"archspec: counting baseline {names[source]} at {size[0]}x{size[1]} ...")
                at_size[key] = own[source].row(counter, True, size, force)
            except SpecError as exc:
                if note:
                    reason = exc.problems[0].message.removeprefix(f"{_cannot_take(size)}: ")
                    note(
                        f"archspec: baseline {names[source]} {_cannot_take(size)}, so its ratios are left out: {reason}"
                    )
                at_size[key] = None
        return at_size[key]

    rows: list[FlopsRow] = []
    marked: set[str] = set()
    for model in models:
        if progress:
            progress(f"archspec: counting {model.name} ...")
        same = model.source in own and not overrides and (input_size is None or model.size == own[model.source].size)
        if same:
            marked.add(model.source)
        row = model.row(counter, same, force=force)
        # A spec changed by --set is not the network its name stands for: the row says so.
        rows.append(_with(row, name=f"{row.name} (--set)") if overrides and model.ref is None else row)
    # Each baseline is shown at every input size its ratios were taken at, so that they can be checked by eye.
    sizes = list(dict.fromkeys((row.input_size[0], row.input_size[1]) for row in rows)) if at_row_sizes else []
    for source in baselines:
        if source in marked:
            continue
        default = own[source].size if input_size is None else as_size(input_size)
        for size in sizes or [default]:
            base = baseline_at(source, size)
            if base is not None and size != default:
                base = _with(base, name=f"{base.name} at {size[0]}x{size[1]}")
            if base is not None:
                rows.append(base)
    return [_with(row, vs=_ratios(row, baselines, names, baseline_at)) for row in rows]


def module_rows(
    source: str, *, overrides: Sequence[str] = (), input_size: InputSize | None = None, depth: int = 2
) -> list[ModuleRow]:
    """Counts per module of the spec's model, down to `depth` levels below the model (analytic, no torch)."""
    from archspec.counting.modules import module_counts

    return [
        row
        for row in module_counts(load_plan(source, overrides=overrides, input_size=input_size))
        if row.depth <= depth
    ]


def _with(row: FlopsRow, **changes: Any) -> FlopsRow:
    from dataclasses import replace

    return replace(row, **changes)


def _ratios(
    row: FlopsRow,
    baselines: Sequence[str],
    names: dict[str, str],
    baseline_at: Callable[[str, tuple[int, int]], FlopsRow | None],
) -> dict[str, Ratio]:
    ratios = {}
    size = (row.input_size[0], row.input_size[1])
    for source in baselines:
        ref = baseline_at(source, size)
        if ref is None:
            ratios[names[source]] = Ratio(None, None)
        else:
            ratios[names[source]] = Ratio(row.params / ref.params, row.flops / ref.flops if ref.flops else None)
    return ratios


def _flatten(data: object, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            flat.update(_flatten(value, f"{prefix}{i}."))
        flat[prefix + "count"] = len(data)
    else:
        flat[prefix[:-1]] = data
    return flat


def _shown(plan: Plan) -> dict[str, object]:
    """The resolved spec without its name and description, as `archspec show` prints it."""
    return {k: v for k, v in resolved_data(plan).items() if k not in ("name", "description")}


def _compared(data: dict[str, object]) -> dict[str, object]:
    """What is compared: no groups and no group width is the same network as 1 group."""
    if data["groups"] is None and data["group_width"] is None:
        data = {**data, "groups": 1}
    return data


def spec_diff(a: str, b: str, *, overrides: Sequence[str] = ()) -> SpecDiff:
    """Fields that differ between two resolved specs (generators expanded), and their counts side by side."""
    return diff_plans(load_plan(a, overrides=overrides), load_plan(b, overrides=overrides), a, b)


def _same_block_form(a: dict[str, object], b: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """`block: bottleneck` against `block: {type: convnext, ...}` compared as `block.type` and the mapping's
    fields, here and in each pair of stages, rather than as a name that went and a mapping that came."""
    if isinstance(a.get("block"), str) != isinstance(b.get("block"), str) and "block" in a and "block" in b:
        a, b = ({**d, "block": {"type": d["block"]} if isinstance(d["block"], str) else d["block"]} for d in (a, b))
    stages_a, stages_b = a.get("stages"), b.get("stages")
    if isinstance(stages_a, list) and isinstance(stages_b, list):
        pairs = [
            _same_block_form(x, y) if isinstance(x, dict) and isinstance(y, dict) else (x, y)
            for x, y in zip(stages_a, stages_b, strict=False)
        ]
        common = len(pairs)
        a = {**a, "stages": [x for x, _ in pairs] + stages_a[common:]}
        b = {**b, "stages": [y for _, y in pairs] + stages_b[common:]}
    return a, b


def diff_plans(plan_a: Plan, plan_b: Plan, a: str, b: str) -> SpecDiff:
    """The resolved fields that differ between two planned specs, and their counts side by side."""
    shown_a, shown_b = _same_block_form(_shown(plan_a), _shown(plan_b))
    left, right = _flatten(_compared(shown_a)), _flatten(_compared(shown_b))
    # A change is shown with the values `archspec show` prints (`groups: null`, not the 1 it compares as).
    raw_left, raw_right = _flatten(shown_a), _flatten(shown_b)
    unset = "(unset)"
    changes = [
        FieldChange(key, raw_left.get(key, unset), raw_right.get(key, unset))
        for key in sorted(set(left) | set(right))
        if left.get(key, unset) != right.get(key, unset)
    ]
    ca, cb = complexity(plan_a), complexity(plan_b)
    counts = [
        CountsPair(what, x, y)
        for what, x, y in (
            ("layers", ca.layers, cb.layers),
            ("params", ca.params, cb.params),
            ("flops", ca.flops, cb.flops),
            ("macs", ca.macs, cb.macs),
        )
    ]
    return SpecDiff(plan_a.spec.name, a, plan_b.spec.name, b, changes, counts)
