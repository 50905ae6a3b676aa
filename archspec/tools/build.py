"""`archspec build`: compile on the device, run a dummy forward pass, report per stage."""

from __future__ import annotations

import time
from pathlib import Path

from archspec.plan import load_plan
from archspec.counting.analytic import complexity
from archspec.errors import Mark, Problem, SpecError
from archspec.report.render import human, render, to_json


def _stage_rows(plan, c) -> list[dict]:
    rows = []
    for section in plan.sections:
        if section.name == "head":
            size = "-"
            kind = "fc" if not plan.spec.head.hidden else f"fc x{len(plan.spec.head.hidden) + 1}"
        else:
            size = f"{section.out_size[0]}x{section.out_size[1]}"
            kind = plan.spec.stem.type if section.name == "stem" else section.block
        rows.append(
            {
                "stage": section.name,
                "blocks": section.blocks or "-",
                "block": kind,
                "shortcut": section.shortcut or "-",
                "channels": f"{section.in_channels} -> {section.out_channels}",
                "stride": section.stride if section.name != "head" else "-",
                "output": size,
                "params": c.params_by_section[section.name],
                "flops": c.flops_by_section[section.name],
            }
        )
    return rows


def build_report(source, device: str, batch: int, overrides, fmt: str, out: Path | None, force: bool, progress) -> str:
    """Build `source` on `device`, run one batch through it, optionally save a checkpoint; return the report."""
    plan = load_plan(source, overrides=overrides)
    c = complexity(plan)
    if out is not None and Path(out).exists() and not force:
        raise SpecError(Problem(Mark(str(out)), "--out", "file exists; pass --force to overwrite it"))
    progress("archspec: loading torch ...")
    import torch

    from archspec.nn.builder import build_from_plan, resolve_device
    from archspec.nn.guard import check_fits

    target = resolve_device(device)
    check_fits(plan, target, batch, force=force, source=str(source))
    progress(f"archspec: building {plan.spec.name} ({c.params:,} parameters) on {target} ...")
    started = time.perf_counter()
    model = build_from_plan(plan, target).eval()
    built = time.perf_counter() - started
    progress(f"archspec: forward pass, batch {batch} at {plan.input_size[0]}x{plan.input_size[1]} ...")
    x = torch.randn(batch, plan.input_channels, *plan.input_size, device=target)
    started = time.perf_counter()
    with torch.inference_mode():
        y = model(x)
    if target.type == "cuda":
        torch.cuda.synchronize(target)
    forward = time.perf_counter() - started
    outputs = [tuple(t.shape) for t in y] if isinstance(y, list) else [tuple(y.shape)]
    params = sum(p.numel() for p in model.parameters())
    if out is not None:
        from archspec.nn.checkpoint import save_checkpoint

        save_checkpoint(model, plan.spec, out, force=force)
        progress(f"archspec: wrote checkpoint {out}")
    rows = _stage_rows(plan, c)
    device_name = torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu"
    if fmt == "json":
        return to_json(
            {
                "name": plan.spec.name,
                "device": str(target),
                "device_name": device_name,
                "batch": batch,
                "input": [plan.input_channels, *plan.input_size],
                "output_shape": [list(s) for s in outputs] if len(outputs) > 1 or plan.taps else list(outputs[0]),
                "layers": c.layers,
                "params": params,
                "flops": c.flops,
                "macs": c.macs,
                "stages": rows,
                "build_seconds": round(built, 4),
                "forward_seconds": round(forward, 4),
                "checkpoint": str(out) if out is not None else None,
            }
        )
    shown = [{**r, "params": human(r["params"]), "flops": human(r["flops"])} for r in rows]
    shown.append({"stage": "total", "blocks": sum(s.blocks for s in plan.sections), "params": human(params), "flops": human(c.flops)})
    columns = [
        ("stage", "stage"),
        ("blocks", "blocks"),
        ("block", "block"),
        ("shortcut", "shortcut"),
        ("channels", "in -> out"),
        ("stride", "stride"),
        ("output", "output"),
        ("params", "params"),
        ("flops", "FLOPs"),
    ]
    shape = ", ".join("x".join(map(str, s)) for s in outputs)
    lines = [
        f"{plan.spec.name}: {c.layers} layers, {params:,} parameters, {human(c.flops)} FLOPs (fvcore convention), {human(c.macs)} MACs",
        f"device: {target} ({device_name}); input {batch}x{plan.input_channels}x{plan.input_size[0]}x{plan.input_size[1]} -> output {shape}",
        f"built in {built:.2f} s, forward pass {forward:.3f} s",
        "",
        render(shown, columns, "table"),
    ]
    if out is not None:
        lines += ["", f"checkpoint: {out}"]
    return "\n".join(lines)
