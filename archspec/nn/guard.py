"""The memory guard: every path that allocates tensors asks it first, and `--force` is the one way past it."""

from __future__ import annotations

import os

import torch

from archspec.counting.memory import Mode, estimate_bytes
from archspec.errors import Mark, Problem, SpecError
from archspec.plan.ops import Plan

_WHAT = {"weights": "the weights", "inference": "forward pass", "train": "training step"}


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory on the device (None when it cannot be told); on the CPU the least of what the system has
    free, what this process's control group may still use and what its address-space limit leaves."""
    if torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    limits = [n for n in (_system_free(), _cgroup_free(), _address_space_free()) if n is not None]
    return min(limits) if limits else None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_free() -> int | None:
    """What the control group (a container's memory limit) lets this process still allocate, if it has a limit."""
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        most, used = _read_int(limit), _read_int(usage)
        if most is not None and used is not None and most < 2**60:
            return max(most - used, 0)
    return None


def _address_space_free() -> int | None:
    """What `ulimit -v` (RLIMIT_AS) leaves of this process's address space, if it is limited."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            size = next((int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:")), None)
    except (OSError, ValueError, IndexError):
        return None
    return None if size is None else max(soft - size, 0)


def _system_free() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_fits(
    plan: Plan,
    device: torch.device | str,
    batch: int = 1,
    *,
    mode: Mode = "inference",
    extra_bytes: int = 0,
    extra_what: str = "",
    force: bool = False,
    source: str | None = None,
) -> None:
    """Raise SpecError when the model (and its forward pass or training step at `batch`, and `extra_bytes` of
    data) would not fit in the device's free memory. `force` skips the check."""
    if force:
        return
    params, activations = estimate_bytes(plan, batch, mode)
    total = params + activations + extra_bytes
    free = available_bytes(device)
    if free is None or total <= free:
        return
    parts = [f"parameters {gib(params)}"]
    if mode != "weights":
        parts.append(f"{_WHAT[mode]} at batch {batch} {gib(activations)}")
    if extra_bytes:
        parts.append(f"{extra_what or 'data'} {gib(extra_bytes)}")
    device_name = torch.device(device).type
    if extra_bytes > max(params, activations):
        field, smaller = "--data", "a smaller data set"
    elif activations > params:
        field, smaller = "--batch", "a smaller --batch or a smaller spec"
    else:
        field, smaller = "stages", "a smaller spec"
    raise SpecError(
        Problem(
            Mark(source or plan.spec.name),
            field,
            f"needs about {gib(total)} ({', '.join(parts)}) but the {device_name} has {gib(free)} free; "
            f"use {smaller}, or pass --force",
        )
    )
