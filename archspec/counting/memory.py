"""A guard against builds that cannot fit: estimate memory from the plan before making a tensor."""

from __future__ import annotations

import os

from archspec.plan import planner as p
from archspec.counting.analytic import count_ops
from archspec.errors import Mark, Problem, SpecError

_FLOAT_BYTES = 4
# A no-grad forward pass holds a layer's input, its output and a scratch copy at most.
_LIVE_TENSORS = 3


def largest_activation(items) -> int:
    """Elements of the largest feature map any op of the plan produces, for one image."""
    best = 0
    for _, op in items:
        if isinstance(op, p.Conv):
            best = max(best, op.out_channels * op.out_size[0] * op.out_size[1], op.in_channels * op.in_size[0] * op.in_size[1])
        elif isinstance(op, p.Sequence):
            best = max(best, largest_activation(op.items))
        elif isinstance(op, p.Residual):
            best = max(best, largest_activation(op.pre + op.body + op.post))
            if op.shortcut is not None and isinstance(op.shortcut, p.Sequence):
                best = max(best, largest_activation(op.shortcut.items))
    return best


def estimate_bytes(plan: p.Plan, batch: int, forward: bool = True) -> tuple[int, int]:
    """(parameter bytes, forward-pass bytes) of a float32 model at this batch size."""
    params = count_ops(plan.children).params * _FLOAT_BYTES
    activations = batch * largest_activation(plan.children) * _FLOAT_BYTES * _LIVE_TENSORS if forward else 0
    return params, activations


def available_bytes(device) -> int | None:
    """Free memory on the device (None when it cannot be told)."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_fits(plan: p.Plan, device, batch: int = 1, forward: bool = True, force: bool = False, source: str | None = None) -> None:
    """Raise SpecError when the model (and its forward pass) would not fit in the device's free memory."""
    if force:
        return
    params, activations = estimate_bytes(plan, batch, forward)
    free = available_bytes(device)
    if free is None or params + activations <= free:
        return
    device_name = getattr(device, "type", str(device))
    raise SpecError(
        Problem(
            Mark(source or plan.spec.name),
            "--batch" if activations > params else "stages",
            f"needs about {gib(params + activations)} (parameters {gib(params)}, forward pass at batch {batch} {gib(activations)}) "
            f"but the {device_name} has {gib(free)} free; use a smaller --batch or a smaller spec, or pass --force",
        )
    )
