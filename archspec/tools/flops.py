"""`archspec flops` and `archspec diff`: counts of several specs side by side."""

from __future__ import annotations

from archspec.plan import load_plan
from archspec.counting.analytic import Complexity, complexity
from archspec.errors import SpecError
from archspec.report.render import human, ratio, render
from archspec.report.spec import resolved_data


def _measure(plan, counter: str) -> Complexity:
    if counter == "fvcore":
        from archspec.nn.fvcore_count import fvcore_complexity

        return fvcore_complexity(plan)
    return complexity(plan)


def _row(source: str, plan, c: Complexity, baseline: bool) -> dict:
    from archspec.tools.paper import paper_figure

    return {
        "name": plan.spec.name,
        "source": source,
        "baseline": baseline,
        "input_size": list(c.input_size),
        "layers": c.layers,
        "params": c.params,
        "flops": c.flops,
        "macs": c.macs,
        "activations": c.activations,
        "flops_by_op": dict(c.flops_by_op),
        "paper": paper_figure(plan),
    }


def compare_rows(specs, baselines, input_size, overrides, counter: str = "analytic", progress=None, note=None) -> list[dict]:
    """One dict per spec, then per baseline, each with `vs` = {baseline: {params_ratio, flops_ratio}}.

    A ratio compares like with like: each baseline is counted at the row's own input size (a
    CIFAR net against VGG-19 at 32x32, not at 224x224). Where a baseline cannot take that
    size (its feature maps would vanish), the ratio is None and `note` is told why.
    `progress` hears about each count as it starts.
    """
    measured = []
    for source in specs:
        plan = load_plan(source, overrides=overrides, input_size=input_size)
        if progress:
            progress(f"counting {plan.spec.name} with {counter} ...")
        measured.append(_row(source, plan, _measure(plan, counter), False))
    # Baselines load at their own size first, so a misspelt name is still an error.
    own = {source: load_plan(source) for source in baselines}
    names = {source: plan.spec.name for source, plan in own.items()}
    at_size: dict[tuple, dict | None] = {}

    def baseline_at(source: str, size):
        size = own[source].input_size if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        key = (source, size)
        if key not in at_size:
            try:
                plan = own[source] if size == own[source].input_size else load_plan(source, input_size=size)
            except SpecError as exc:
                if note:
                    shown = "x".join(map(str, size))
                    note(f"archspec: baseline {names[source]} cannot take a {shown} input, so its ratios are left out: {exc.problems[0].message}")
                at_size[key] = None
            else:
                if progress:
                    progress(f"counting baseline {plan.spec.name} at {size[0]}x{size[1]} with {counter} ...")
                at_size[key] = _row(source, plan, _measure(plan, counter), True)
        return at_size[key]

    base_rows = [row for row in (baseline_at(source, input_size) for source in baselines) if row is not None]
    rows = measured + [b for b in base_rows if b["source"] not in specs]
    for row in rows:
        row["vs"] = {}
        for source in baselines:
            ref = baseline_at(source, tuple(row["input_size"]))
            if ref is None:
                row["vs"][names[source]] = {"params_ratio": None, "flops_ratio": None}
            else:
                row["vs"][names[source]] = {"params_ratio": row["params"] / ref["params"], "flops_ratio": row["flops"] / ref["flops"] if ref["flops"] else None}
    return rows


def flops_columns(baselines: list[str], ops: list[str]) -> list[tuple[str, str]]:
    columns = [("name", "name"), ("layers", "layers"), ("params", "params"), ("flops", "GFLOPs"), ("macs", "GMACs"), ("paper", "paper")]
    for b in baselines:
        columns += [(f"params_vs_{b}", f"params/{b}"), (f"flops_vs_{b}", f"FLOPs/{b}")]
    columns += [(f"op_{op}", op) for op in ops]
    return columns


def format_flops_rows(rows: list[dict], columns: list[tuple[str, str]], fmt: str) -> str:
    exact = fmt == "csv"
    cells = []
    for row in rows:
        cell = {
            "name": row["name"] + (" (baseline)" if row["baseline"] and not exact else ""),
            "layers": row["layers"],
            "params": row["params"] if exact else human(row["params"]),
            "flops": row["flops"] if exact else human(row["flops"]),
            "macs": row["macs"] if exact else human(row["macs"]),
            "paper": row["paper"],
        }
        for b, r in row["vs"].items():
            cell[f"params_vs_{b}"] = ("" if r["params_ratio"] is None else repr(r["params_ratio"])) if exact else ratio(r["params_ratio"])
            flops_ratio = r["flops_ratio"]
            cell[f"flops_vs_{b}"] = ("" if flops_ratio is None else repr(flops_ratio)) if exact else ratio(flops_ratio)
        for op, value in row["flops_by_op"].items():
            cell[f"op_{op}"] = value if exact else human(value)
        cells.append(cell)
    return render(cells, columns, fmt)


def _flatten(data, prefix: str = "") -> dict:
    flat = {}
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


def _compared(plan) -> dict:
    """The resolved spec without its name and description; no groups and no group width reads as 1 group."""
    data = {k: v for k, v in resolved_data(plan).items() if k not in ("name", "description")}
    if data["groups"] is None and data["group_width"] is None:
        data["groups"] = 1
    return data


def spec_diff(a: str, b: str, overrides=()) -> str:
    """Fields that differ between two resolved specs, then parameters and FLOPs side by side."""
    plan_a, plan_b = load_plan(a, overrides=overrides), load_plan(b, overrides=overrides)
    left, right = _flatten(_compared(plan_a)), _flatten(_compared(plan_b))
    lines = [f"--- {plan_a.spec.name} ({a})", f"+++ {plan_b.spec.name} ({b})"]
    changed = [k for k in sorted(set(left) | set(right)) if left.get(k, "(unset)") != right.get(k, "(unset)")]
    for key in changed:
        lines.append(f"  {key}: {left.get(key, '(unset)')} -> {right.get(key, '(unset)')}")
    if not changed:
        lines.append("  (the resolved specs are the same)")
    ca, cb = complexity(plan_a), complexity(plan_b)
    rows = []
    for label, x, y in (("layers", ca.layers, cb.layers), ("params", ca.params, cb.params), ("GFLOPs", ca.flops, cb.flops), ("GMACs", ca.macs, cb.macs)):
        change = f"{(y - x) / x * 100:+.1f}%" if x else "-"
        rows.append({"what": label, "a": x if label == "layers" else human(x), "b": y if label == "layers" else human(y), "change": change})
    lines += ["", render(rows, [("what", ""), ("a", plan_a.spec.name), ("b", plan_b.spec.name), ("change", "change")], "table")]
    return "\n".join(lines)
