"""`archspec bench`: images per second and peak memory of a built model, beside the same net from torchvision or timm.

Method: every model is built on the device, warmed up (which also compiles it with
`--compile`), then timed one step at a time, the models taking turns (ABBA order)
so that a busy machine slows them alike. A step is one forward pass (inference) or
forward, backward and SGD step (training); on CUDA each is bracketed by
`torch.cuda.synchronize`. Throughput is batch / median step time. Peak memory is
CUDA's `max_memory_allocated` during a model's warm-up, counted from the memory
the other models held, plus the model's own weights, gradients and optimiser
state; on the CPU it is not reported (the process's resident set mixes the models
and torch's caching allocators).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError
from archspec.lang.refs import LIBRARIES, PEERS, ModelRef, parse_model_ref
from archspec.nn.builder import build_from_plan, resolve_device
from archspec.nn.device import check_amp, check_compile
from archspec.nn.guard import check_fits
from archspec.plan import InputSize, Plan, Source, load_plan
from archspec.plan.load import source_label
from archspec.report.results import BenchResult, Measurement
from archspec.tools.progress import Progress

DEFAULTS = {"cpu": {"batch": 16, "warmup": 3, "iters": 10}, "cuda": {"batch": 128, "warmup": 10, "iters": 50}}


def _differences(plan: Plan, name: str) -> str:
    """The resolved fields in which `plan` differs from the stock spec `name`, in words."""
    from archspec.tools.flops import diff_plans

    diff = diff_plans(load_plan(name, input_size=plan.input_size), plan, name, plan.spec.name)
    fields = [change.field for change in diff.changes if change.field not in ("input.size",)]
    return ", ".join(fields[:4]) + (f" and {len(fields) - 4} more" if len(fields) > 4 else "")


def peer_name(plan: Plan, library: str) -> str:
    """The name under which `library` ships the network of `plan`; a SpecError saying what differs if it ships none."""
    if library not in PEERS:
        raise SpecError(
            Problem(
                Mark(f"--vs {library}"),
                "vs",
                f"unknown peer library; use one of {', '.join(LIBRARIES)}, or LIBRARY:NAME",
            ),
            code=2,
        )
    candidates = sorted(PEERS[library], key=lambda name: name != plan.spec.name)
    for name in candidates:
        stock = load_plan(name, input_size=plan.input_size)
        if stock.children == plan.children and stock.taps == plan.taps:
            return name
    if plan.spec.name in PEERS[library]:
        changed = _differences(plan, plan.spec.name)
        what = f" in {changed}" if changed else ""
        message = (
            f"this spec differs from {library}'s {plan.spec.name}{what}; bench the unmodified stock spec, or "
            f"name a model with --vs {library}:NAME"
        )
    else:
        message = (
            f"{library} ships no model with the architecture of {plan.spec.name}; name one with --vs "
            f"{library}:NAME (any {library} model)"
        )
    raise SpecError(Problem(Mark(f"--vs {library}"), "vs", message))


def resolve_peers(plan: Plan, vs: Sequence[str]) -> list[tuple[str, ModelRef]]:
    """(label, model) for every `--vs`: `torchvision` or `timm` (the same network, by name), or LIBRARY:NAME."""
    from archspec.nn.library import check_known

    peers: list[tuple[str, ModelRef]] = []
    if vs and plan.input_channels != 3:
        raise SpecError(
            Problem(
                Mark(f"--vs {vs[0]}"),
                "vs",
                (
                    "torchvision's and timm's models take 3-channel images; this spec's input has "
                    f"{plan.input_channels} channels"
                ),
            )
        )
    for text in dict.fromkeys(vs):
        ref = parse_model_ref(text, "--vs")
        if ref is None:
            peers.append((text, ModelRef(text, peer_name(plan, text))))
        else:
            check_known(ref, "--vs")
            peers.append((str(ref), ref))
    return peers


@dataclass(frozen=True)
class Settings:
    """How every model under test is run; one value for all of them, so that the comparison is fair."""

    device: torch.device
    batch: int
    train: bool
    amp: str | None
    channels_last: bool
    compile: bool
    warmup: int
    iters: int

    @property
    def modes(self) -> list[str]:
        return ["inference"] + (["train"] if self.train else [])


@dataclass
class _Runner:
    """One model under test, with what it needs for a training step and what was measured."""

    label: str  # "archspec", the peer library, or LIBRARY:NAME
    name: str
    model: nn.Module
    compiled: Callable[..., Any] | None = None
    optimizer: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None
    times: dict[str, list[float]] = field(default_factory=dict)  # mode -> seconds per step
    peak: dict[str, int | None] = field(default_factory=dict)  # mode -> bytes, or None

    @property
    def call(self) -> Callable[..., Any]:
        return self.compiled if self.compiled is not None else self.model

    def resident_bytes(self) -> int:
        """CUDA bytes held between steps: weights, buffers, gradients, optimiser state."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        tensors += [p.grad for p in self.model.parameters() if p.grad is not None]
        if self.optimizer is not None:
            tensors += [
                value
                for state in self.optimizer.state.values()
                for value in state.values()
                if hasattr(value, "element_size")
            ]
        return sum(t.numel() * t.element_size() for t in tensors if t.device.type == "cuda")


def run_bench(
    source: Source,
    *,
    overrides: Sequence[str] = (),
    input_size: InputSize | None = None,
    device: str = "auto",
    batch: int | None = None,
    train: bool = False,
    amp: str | None = None,
    channels_last: bool = False,
    compile_model: bool = False,
    vs: Sequence[str] = (),
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    weights: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BenchResult:
    """Benchmark the spec (and each `vs` model) and return the measurements."""
    plan = load_plan(source, overrides=overrides, input_size=input_size)
    peers = resolve_peers(plan, vs)
    target = resolve_device(device)
    check_amp(amp, target)
    if compile_model:
        check_compile()
    defaults = DEFAULTS[target.type]
    warmup = defaults["warmup"] if warmup is None else warmup
    if compile_model:
        warmup = max(warmup, 2)  # the first call compiles; the second may recompile for the mode
    settings = Settings(
        target, batch or defaults["batch"], train, amp, channels_last, compile_model, warmup, iters or defaults["iters"]
    )
    # Every model under test is about as large as archspec's: guard for all of them at once.
    check_fits(
        plan,
        target,
        settings.batch,
        mode="train" if train else "inference",
        force=force,
        source=source_label(source, plan),
    )
    saved = torch.get_num_threads(), torch.backends.cudnn.benchmark
    progress = progress or Progress(prefix="archspec bench")
    try:
        if threads:
            # On a shared CPU, fewer OpenMP threads than cores avoid stalls when another job takes a core.
            torch.set_num_threads(threads)
        if target.type == "cuda":
            torch.backends.cudnn.benchmark = True  # the same for every model under test
        runners = _build(plan, peers, settings, progress, weights, force)
        _measure(plan, runners, settings, progress)
        return _report(source, plan, runners, settings)
    except torch.cuda.OutOfMemoryError:
        raise SpecError(
            Problem(Mark(f"--batch {settings.batch}"), "batch", f"out of memory on {target}; use a smaller --batch")
        ) from None
    finally:
        progress.close()
        torch.set_num_threads(saved[0])
        torch.backends.cudnn.benchmark = saved[1]


def _build(
    plan: Plan,
    peers: list[tuple[str, ModelRef]],
    settings: Settings,
    progress: Progress,
    weights: Path | None,
    force: bool,
) -> list[_Runner]:
    """archspec's model and each peer's, on the device, in the memory format asked for (not yet compiled)."""
    from archspec.nn.library import build_library_model

    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    progress.note(f"building archspec {plan.spec.name} on {settings.device} ...")
    if weights is not None:
        from archspec.nn.weights import load_weights

        model, loaded = load_weights(plan, weights, device=settings.device, force=force)
        progress.note(str(loaded))
    else:
        model = build_from_plan(plan, settings.device)
    runners = [_Runner("archspec", plan.spec.name, model.to(memory_format=memory_format))]
    for label, ref in peers:
        progress.note(f"building {label if label == str(ref) else f'{label} {ref.name}'} on {settings.device} ...")
        peer = build_library_model(ref, settings.device, force=force)
        runners.append(_Runner(label, ref.name, peer.to(memory_format=memory_format)))
    params = sum(p.numel() for p in runners[0].model.parameters())
    for (label, ref), runner in zip(peers, runners[1:], strict=True):
        theirs = sum(p.numel() for p in runner.model.parameters())
        if label == ref.library and theirs != params:  # PEERS names a model that is not the same network
            raise SpecError(
                Problem(
                    Mark(f"--vs {label}"),
                    "vs",
                    f"{label}'s {ref.name} has {theirs:,} parameters, archspec's {params:,}",
                )
            )
    if settings.compile:
        for runner in runners:
            runner.compiled = torch.compile(runner.model)
    return runners


class _Workload:
    """The batch every model sees, and the inference and training steps run on it."""

    def __init__(self, plan: Plan, settings: Settings):
        self.settings = settings
        generator = torch.Generator().manual_seed(0)
        memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        x = torch.randn(settings.batch, plan.input_channels, *plan.input_size, generator=generator)
        self.x = x.to(settings.device).contiguous(memory_format=memory_format)
        classes = plan.spec.head.num_classes or 1
        self.labels = torch.randint(0, classes, (settings.batch,), generator=generator).to(settings.device)
        self.dtype = check_amp(settings.amp, settings.device)

    def autocast(self) -> torch.autocast:
        if self.dtype is None:
            return torch.autocast(self.settings.device.type, enabled=False)
        return torch.autocast(self.settings.device.type, dtype=self.dtype)

    def loss(self, output: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        if isinstance(output, (list, tuple)):  # a features-only backbone: any scalar of its outputs
            return cast(torch.Tensor, sum(o.float().mean() for o in output))
        # A peer named by the user may have another number of classes than the spec.
        return torch.nn.functional.cross_entropy(output.float(), self.labels % output.shape[1])

    def step(self, runner: _Runner, mode: str) -> Callable[[], None]:
        """A function that runs one step of `runner` in `mode` (and sets the model's mode now)."""
        call = runner.call
        if mode == "inference":
            runner.model.eval()

            def infer() -> None:
                with torch.inference_mode(), self.autocast():
                    call(self.x)

            return infer
        runner.model.train()
        # torchvision's reference recipe: SGD, momentum 0.9, weight decay 1e-4.
        optimizer = runner.optimizer = torch.optim.SGD(
            runner.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4
        )
        scaler = runner.scaler = torch.amp.GradScaler(self.settings.device.type, enabled=self.settings.amp == "fp16")

        def train() -> None:
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss = self.loss(call(self.x))
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
            scaler.step(optimizer)
            scaler.update()

        return train


def _measure(plan: Plan, runners: list[_Runner], settings: Settings, progress: Progress) -> None:
    """For each mode: warm every model up (measuring its memory), then time them step by step in turns."""
    device = settings.device
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    workload = _Workload(plan, settings)
    for mode in settings.modes:
        steps: dict[str, Callable[[], None]] = {}
        for runner in runners:
            steps[runner.label] = step = workload.step(runner, mode)
            progress.phase(f"{mode}: warm-up {runner.label}", settings.warmup)
            if cuda:
                sync()
                torch.cuda.reset_peak_memory_stats(device)
                others = torch.cuda.memory_allocated(device) - runner.resident_bytes()
            try:
                for _ in range(settings.warmup):
                    step()
                    sync()
                    progress.step()
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                if not settings.compile:
                    raise
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SpecError(
                    Problem(Mark("--compile"), "compile", f"torch.compile failed for {runner.label}: {first}")
                ) from None
            runner.peak[mode] = torch.cuda.max_memory_allocated(device) - others if cuda else None
        progress.phase(f"{mode}: timing {' and '.join(r.label for r in runners)}", settings.iters * len(runners))
        for runner in runners:
            runner.times[mode] = []
        for i in range(settings.iters):
            # ABBA order: neither model always runs first after the other.
            for runner in runners if i % 2 == 0 else runners[::-1]:
                sync()
                started = time.perf_counter()
                steps[runner.label]()
                sync()
                runner.times[mode].append(time.perf_counter() - started)
                progress.step()


def _report(source: Source, plan: Plan, runners: list[_Runner], settings: Settings) -> BenchResult:
    results: dict[str, dict[str, Measurement]] = {}
    for runner in runners:
        results[runner.label] = {}
        for mode in settings.modes:
            times = runner.times[mode]
            median = statistics.median(times)
            results[runner.label][mode] = Measurement(
                images_per_s=round(settings.batch / median, 2),
                median_ms=round(median * 1e3, 3),
                min_ms=round(min(times) * 1e3, 3),
                max_ms=round(max(times) * 1e3, 3),
                peak_memory_bytes=runner.peak[mode],
            )
    ours = results["archspec"]
    comparison: dict[str, dict[str, float]] = {}
    for runner in runners[1:]:
        theirs = results[runner.label]
        comparison[runner.label] = {
            "throughput_ratio": round(ours["inference"].images_per_s / theirs["inference"].images_per_s, 4)
        }
        if settings.train:
            comparison[runner.label]["train_throughput_ratio"] = round(
                ours["train"].images_per_s / theirs["train"].images_per_s, 4
            )
    device = settings.device
    return BenchResult(
        spec=plan.spec.name,
        source=str(source),
        peers={r.label: r.name for r in runners[1:]},
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        params=sum(p.numel() for p in runners[0].model.parameters()),
        batch=settings.batch,
        input=[plan.input_channels, *plan.input_size],
        amp=settings.amp,
        channels_last=settings.channels_last,
        compile=settings.compile,
        warmup=settings.warmup,
        iters=settings.iters,
        results=results,
        vs=comparison,
    )


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's word for it)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def main(argv: list[str]) -> int:
    """`python -m archspec.tools.bench summarize FILE.json...`: the Markdown table benchmarks/gpu.sh prints."""
    import json

    if len(argv) < 2 or argv[0] != "summarize":
        sys.stderr.write("usage: python -m archspec.tools.bench summarize RESULT.json...\n")
        return 2
    from archspec.report.tables import bench_markdown

    results = []
    for path in argv[1:]:
        with open(path, encoding="utf-8") as handle:
            results.append(BenchResult.from_json(json.load(handle)))
    print(bench_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
