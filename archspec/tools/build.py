"""`archspec build`: compile on the device, run a dummy forward pass, report per stage."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from archspec.counting.analytic import Complexity, complexity
from archspec.files import check_output
from archspec.lang.sources import locate
from archspec.plan import Plan, Source, load_plan
from archspec.plan.load import source_label
from archspec.plan.ops import Conv, Items, Op, children
from archspec.report.results import BuildResult, StageRow


def walk_ops(items: Items) -> Iterator[tuple[str, Op]]:
    """Every op under `items`, depth first."""
    for name, op in items:
        yield name, op
        yield from walk_ops(children(op))


def stage_rows(plan: Plan, c: Complexity) -> list[StageRow]:
    """The report's rows: stem, each stage, head, with their parameters and FLOPs."""
    rows = []
    for section in plan.sections:
        channels = f"{section.in_channels} -> {section.out_channels}"
        if section.name == "head":
            size = "-"
            kind = "fc" if not plan.spec.head.hidden else f"fc x{len(plan.spec.head.hidden) + 1}"
            convs = [op for _, op in walk_ops(section.ops) if isinstance(op, Conv)]
            if convs:  # MobileNet's and EfficientNet's 1x1 conv before the pool
                kind = f"conv + {kind}"
                channels = f"{section.in_channels} -> {convs[-1].out_channels} -> {section.out_channels}"
        else:
            size = f"{section.out_size[0]}x{section.out_size[1]}"
            kind = plan.spec.stem.type if section.name == "stem" else section.block
        rows.append(
            StageRow(
                stage=section.name,
                blocks=section.blocks or "-",
                block=kind,
                shortcut=section.shortcut or "-",
                channels=channels,
                stride=section.stride if section.name != "head" else "-",
                output=size,
                params=c.params_by_section[section.name],
                flops=c.flops_by_section[section.name],
            )
        )
    return rows


def check_model_output(
    out: str | os.PathLike[str], *, force: bool, source: Source, weights: str | os.PathLike[str] | None
) -> None:
    """Refuse an `--out` for a model (a checkpoint, an export) that may not be written, or that is the spec or the
    weights file the command reads (even with `force`)."""
    spec_file = locate(source) if isinstance(source, str) else None
    check_output(out, force=force, reads=(("the spec", spec_file), ("the weights file", weights)))


def run_build(
    source: Source,
    *,
    overrides: Sequence[str] = (),
    device: str = "auto",
    batch: int = 1,
    out: Path | None = None,
    force: bool = False,
    weights: Path | None = None,
    progress: Callable[[str], None] = lambda text: None,
) -> BuildResult:
    """Build `source` on `device` (with `weights` when given), run one batch through it, optionally save a
    checkpoint."""
    plan = load_plan(source, overrides=overrides)
    c = complexity(plan)
    if out is not None:
        check_model_output(out, force=force, source=source, weights=weights)
    progress("archspec: loading torch ...")
    import torch

    from archspec.nn.builder import resolve_device
    from archspec.nn.guard import check_fits

    target = resolve_device(device)
    check_fits(plan, target, batch, force=force, source=source_label(source, plan))
    loaded = None
    if weights is not None:
        from archspec.nn.weights import load_weights

        progress(f"archspec: checking {weights} against {plan.spec.name}'s plan ...")
        started = time.perf_counter()
        model, loaded = load_weights(plan, weights, device=target, force=force)
        progress(f"archspec: {loaded}")
    else:
        from archspec.nn.builder import build_from_plan

        progress(f"archspec: building {plan.spec.name} ({c.params:,} parameters) on {target} ...")
        started = time.perf_counter()
        model = build_from_plan(plan, target)
    model.eval()
    built = time.perf_counter() - started
    progress(f"archspec: forward pass, batch {batch} at {plan.input_size[0]}x{plan.input_size[1]} ...")
    x = torch.randn(batch, plan.input_channels, *plan.input_size, device=target)
    started = time.perf_counter()
    with torch.inference_mode():
        y = model(x)
    if target.type == "cuda":
        torch.cuda.synchronize(target)
    forward = time.perf_counter() - started
    outputs = [list(t.shape) for t in y] if isinstance(y, list) else [list(y.shape)]
    params = sum(p.numel() for p in model.parameters())
    if out is not None:
        from archspec.nn.checkpoint import save_checkpoint

        save_checkpoint(model, plan.spec, out, force=force)
        progress(f"archspec: wrote checkpoint {out}")
    return BuildResult(
        name=plan.spec.name,
        device=str(target),
        device_name=torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu",
        batch=batch,
        input=[plan.input_channels, *plan.input_size],
        output_shape=outputs if len(outputs) > 1 or plan.taps else outputs[0],
        layers=c.layers,
        params=params,
        flops=c.flops,
        macs=c.macs,
        stages=stage_rows(plan, c),
        build_seconds=round(built, 4),
        forward_seconds=round(forward, 4),
        checkpoint=str(out) if out is not None else None,
        weights=str(loaded) if loaded is not None else None,
    )
