"""`archspec flops` and `archspec diff`: counts of several specs side by side."""

from __future__ import annotations

from archspec.api import load_plan
from archspec.counting import Complexity, complexity
from archspec.report import human, ratio, render


def _measure(plan, counter: str) -> Complexity:
    if counter == "fvcore":
        from archspec.fvcount import fvcore_complexity

        return fvcore_complexity(plan)
    return complexity(plan)


def _row(source: str, plan, c: Complexity, baseline: bool) -> dict:
    from archspec.paper import paper_figure

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


def compare_rows(specs, baselines, input_size, overrides, counter: str = "analytic", progress=None) -> list[dict]:
    """One dict per spec, then per baseline, each with `vs` = {baseline: {params_ratio, flops_ratio}}."""
    measured = []
    for source in specs:
        plan = load_plan(source, overrides, input_size)
        if progress:
            progress(f"counting {plan.spec.name} with {counter} ...")
        measured.append(_row(source, plan, _measure(plan, counter), False))
    base_rows = []
    for source in baselines:
        plan = load_plan(source, (), input_size)
        if progress:
            progress(f"counting baseline {plan.spec.name} with {counter} ...")
        base_rows.append(_row(source, plan, _measure(plan, counter), True))
    rows = measured + [b for b in base_rows if b["source"] not in specs]
    # A ratio compares like with like: the baseline is counted at the row's own input size
    # (a CIFAR net against VGG-19 at 32x32, not at 224x224).
    at_size: dict[tuple, dict] = {(tuple(b["input_size"]), b["source"]): b for b in base_rows}
    for row in rows:
        row["vs"] = {}
        for b in base_rows:
            key = (tuple(row["input_size"]), b["source"])
            if key not in at_size:
                plan = load_plan(b["source"], (), tuple(row["input_size"]))
                at_size[key] = _row(b["source"], plan, _measure(plan, counter), True)
            ref = at_size[key]
            row["vs"][b["name"]] = {"params_ratio": row["params"] / ref["params"], "flops_ratio": row["flops"] / ref["flops"] if ref["flops"] else None}
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
            cell[f"params_vs_{b}"] = repr(r["params_ratio"]) if exact else ratio(r["params_ratio"])
            flops_ratio = r["flops_ratio"]
            cell[f"flops_vs_{b}"] = "" if flops_ratio is None else (repr(flops_ratio) if exact else ratio(flops_ratio))
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


def spec_diff(a: str, b: str, overrides=()) -> str:
    """Fields that differ between two resolved specs, then parameters and FLOPs side by side."""
    plan_a, plan_b = load_plan(a, overrides), load_plan(b, overrides)
    left = _flatten(plan_a.spec.model_dump(mode="json", exclude={"extends", "name", "description"}))
    right = _flatten(plan_b.spec.model_dump(mode="json", exclude={"extends", "name", "description"}))
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
