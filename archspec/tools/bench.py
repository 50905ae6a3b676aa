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
from dataclasses import dataclass, field

from archspec.plan import load_plan
from archspec.errors import Mark, Problem, SpecError

# Stock specs that are, op for op, a model the peer library ships under the same name.
PEERS = {
    "torchvision": (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
        "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    ),
    # timm's VGGs run the classifier as a 7x7 conv without torchvision's adaptive pool, so they
    # are not the same network at other input sizes; they are left out.
    "timm": (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnet18d", "resnet26d", "resnet50d", "seresnet50",
        "resnext50_32x4d", "resnext50d_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
    ),
}  # fmt: skip
DEFAULTS = {"cpu": {"batch": 16, "warmup": 3, "iters": 10}, "cuda": {"batch": 128, "warmup": 10, "iters": 50}}
AMP = ("bf16", "fp16")


def peer_name(plan, library: str) -> str:
    """The name under which `library` ships the network of `plan`; a SpecError if it ships none."""
    if library not in PEERS:
        raise SpecError(Problem(Mark(f"--vs {library}"), "vs", f"unknown peer library; use one of {', '.join(PEERS)}"))
    candidates = sorted(PEERS[library], key=lambda name: name != plan.spec.name)
    for name in candidates:
        stock = load_plan(name, input_size=plan.input_size)
        if stock.children == plan.children and stock.taps == plan.taps:
            return name
    raise SpecError(
        Problem(
            Mark(f"--vs {library}"),
            "vs",
            f"{library} has no model with the architecture of {plan.spec.name}; --vs {library} compares the stock specs "
            f"{', '.join(PEERS[library])} (unmodified)",
        )
    )


def build_peer(library: str, name: str, device):
    """A freshly initialised model from the peer library."""
    if library == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)().to(device)
    import timm

    return timm.create_model(name, pretrained=False).to(device)


@dataclass(frozen=True)
class Settings:
    """How every model under test is run; one value for all of them, so that the comparison is fair."""

    device: object  # torch.device
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

    label: str  # "archspec", or the peer library
    name: str
    model: object
    compiled: object = None
    optimizer: object = None
    scaler: object = None
    times: dict = field(default_factory=dict)  # mode -> seconds per step
    peak: dict = field(default_factory=dict)  # mode -> bytes, or None

    @property
    def call(self):
        return self.compiled if self.compiled is not None else self.model

    def resident_bytes(self) -> int:
        """CUDA bytes held between steps: weights, buffers, gradients, optimiser state."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        tensors += [p.grad for p in self.model.parameters() if p.grad is not None]
        if self.optimizer is not None:
            tensors += [value for state in self.optimizer.state.values() for value in state.values() if hasattr(value, "element_size")]
        return sum(t.numel() * t.element_size() for t in tensors if t.device.type == "cuda")


class Progress:
    """A one-line progress bar on stderr; on a pipe or a log, one line per phase instead."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total, self.done = "", 0, 0

    def phase(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        if not self.live:
            self.note(f"{label} ({total} steps) ...")
        self._draw()

    def step(self) -> None:
        self.done += 1
        self._draw()

    def note(self, text: str) -> None:
        self.stream.write(f"archspec bench: {text}\n")
        self.stream.flush()

    def _draw(self) -> None:
        if not self.live:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        self.stream.write(f"\rarchspec bench: {self.label:<40} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _check_options(target, amp, compile_model) -> None:
    import torch

    if amp is not None and amp not in AMP:
        raise SpecError(Problem(Mark(f"--amp {amp}"), "amp", "use bf16 or fp16"))
    if amp == "fp16" and target.type != "cuda":
        raise SpecError(Problem(Mark("--amp fp16"), "amp", "float16 autocast needs CUDA; on the CPU use --amp bf16"))
    if amp == "bf16" and target.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SpecError(Problem(Mark("--amp bf16"), "amp", f"{torch.cuda.get_device_name(target)} does not support bfloat16; use --amp fp16"))
    if compile_model:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            raise SpecError(Problem(Mark("--compile"), "compile", f"torch.compile is not available with this Python ({sys.version.split()[0]}) and torch ({torch.__version__})"))


def run_bench(
    source,
    overrides=(),
    input_size=None,
    device: str = "auto",
    batch: int | None = None,
    train: bool = False,
    amp: str | None = None,
    channels_last: bool = False,
    compile_model: bool = False,
    vs=(),
    warmup: int | None = None,
    iters: int | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> dict:
    """Benchmark the spec (and each `vs` library's same network) and return the measurements as plain data."""
    plan = load_plan(source, overrides=overrides, input_size=input_size)
    peers = [(library, peer_name(plan, library)) for library in dict.fromkeys(vs)]
    import torch

    from archspec.nn.builder import resolve_device

    target = resolve_device(device)
    _check_options(target, amp, compile_model)
    defaults = DEFAULTS[target.type]
    warmup = defaults["warmup"] if warmup is None else warmup
    if compile_model:
        warmup = max(warmup, 2)  # the first call compiles; the second may recompile for the mode
    settings = Settings(target, batch or defaults["batch"], train, amp, channels_last, compile_model, warmup, iters or defaults["iters"])
    saved = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        if threads:
            # On a shared CPU, fewer OpenMP threads than cores avoid stalls when another job takes a core.
            torch.set_num_threads(threads)
        if target.type == "cuda":
            torch.backends.cudnn.benchmark = True  # the same for every model under test
        progress = progress or Progress()
        runners = _build(plan, peers, settings, progress)
        _measure(plan, runners, settings, progress)
        return _report(source, plan, runners, settings)
    except torch.cuda.OutOfMemoryError:
        raise SpecError(Problem(Mark(f"--batch {settings.batch}"), "batch", f"out of memory on {target}; use a smaller --batch")) from None
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.cudnn.benchmark = saved[1]


def _build(plan, peers, settings: Settings, progress: Progress) -> list[_Runner]:
    """archspec's model and each peer's, on the device, in the memory format asked for (not yet compiled)."""
    import torch

    from archspec.nn.builder import build_from_plan

    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    runners = []
    for label, name in [("archspec", plan.spec.name), *peers]:
        progress.note(f"building {label} {name} on {settings.device} ...")
        model = build_from_plan(plan, settings.device) if label == "archspec" else build_peer(label, name, settings.device)
        runners.append(_Runner(label, name, model.to(memory_format=memory_format)))
    params = sum(p.numel() for p in runners[0].model.parameters())
    for runner in runners[1:]:
        theirs = sum(p.numel() for p in runner.model.parameters())
        if theirs != params:  # PEERS names a model that is not the same network
            raise SpecError(Problem(Mark(f"--vs {runner.label}"), "vs", f"{runner.label}'s {runner.name} has {theirs:,} parameters, archspec's {params:,}"))
    if settings.compile:
        for runner in runners:
            runner.compiled = torch.compile(runner.model)
    return runners


class _Workload:
    """The batch every model sees, and the inference and training steps run on it."""

    def __init__(self, plan, settings: Settings):
        import torch

        self.settings = settings
        generator = torch.Generator().manual_seed(0)
        memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        x = torch.randn(settings.batch, plan.input_channels, *plan.input_size, generator=generator)
        self.x = x.to(settings.device).contiguous(memory_format=memory_format)
        classes = plan.spec.head.num_classes or 1
        self.labels = torch.randint(0, classes, (settings.batch,), generator=generator).to(settings.device)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[settings.amp]

    def autocast(self):
        import torch

        if self.dtype is None:
            return torch.autocast(self.settings.device.type, enabled=False)
        return torch.autocast(self.settings.device.type, dtype=self.dtype)

    def loss(self, output):
        import torch

        if isinstance(output, (list, tuple)):  # a features-only backbone: any scalar of its outputs
            return sum(o.float().mean() for o in output)
        return torch.nn.functional.cross_entropy(output.float(), self.labels)

    def step(self, runner: _Runner, mode: str):
        """A function that runs one step of `runner` in `mode` (and sets the model's mode now)."""
        import torch

        call = runner.call
        if mode == "inference":
            runner.model.eval()

            def infer():
                with torch.inference_mode(), self.autocast():
                    call(self.x)

            return infer
        runner.model.train()
        # torchvision's reference recipe: SGD, momentum 0.9, weight decay 1e-4.
        runner.optimizer = torch.optim.SGD(runner.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        runner.scaler = torch.amp.GradScaler(self.settings.device.type, enabled=self.settings.amp == "fp16")

        def train():
            runner.optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss = self.loss(call(self.x))
            runner.scaler.scale(loss).backward()
            runner.scaler.step(runner.optimizer)
            runner.scaler.update()

        return train


def _measure(plan, runners: list[_Runner], settings: Settings, progress: Progress) -> None:
    """For each mode: warm every model up (measuring its memory), then time them step by step in turns."""
    import torch

    device = settings.device
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    workload = _Workload(plan, settings)
    for mode in settings.modes:
        steps = {}
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
                raise SpecError(Problem(Mark("--compile"), "compile", f"torch.compile failed for {runner.label}: {first}")) from None
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


def _report(source, plan, runners: list[_Runner], settings: Settings) -> dict:
    import torch

    results = {}
    for runner in runners:
        results[runner.label] = {}
        for mode in settings.modes:
            times = runner.times[mode]
            median = statistics.median(times)
            results[runner.label][mode] = {
                "images_per_s": round(settings.batch / median, 2),
                "median_ms": round(median * 1e3, 3),
                "min_ms": round(min(times) * 1e3, 3),
                "max_ms": round(max(times) * 1e3, 3),
                "peak_memory_bytes": runner.peak[mode],
            }
    ours = results["archspec"]
    comparison = {}
    for runner in runners[1:]:
        theirs = results[runner.label]
        comparison[runner.label] = {"throughput_ratio": round(ours["inference"]["images_per_s"] / theirs["inference"]["images_per_s"], 4)}
        if settings.train:
            comparison[runner.label]["train_throughput_ratio"] = round(ours["train"]["images_per_s"] / theirs["train"]["images_per_s"], 4)
    device = settings.device
    return {
        "spec": plan.spec.name,
        "source": str(source),
        "peers": {r.label: r.name for r in runners[1:]},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in runners[0].model.parameters()),
        "batch": settings.batch,
        "input": [plan.input_channels, *plan.input_size],
        "amp": settings.amp,
        "channels_last": settings.channels_last,
        "compile": settings.compile,
        "warmup": settings.warmup,
        "iters": settings.iters,
        "results": results,
        "vs": comparison,
    }


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


def settings(result: dict) -> str:
    """`bf16, channels-last, compiled` in words."""
    return ", ".join(
        [result["amp"] or "float32", "channels-last" if result["channels_last"] else "channels-first", "compiled" if result["compile"] else "eager"]
    )


def format_table(result: dict) -> str:
    """The measurements as an aligned table, with the settings above and the ratios below."""
    from archspec.report.render import render

    rows = []
    for label, modes in result["results"].items():
        name = result["spec"] if label == "archspec" else result["peers"][label]
        for mode, m in modes.items():
            memory = m["peak_memory_bytes"]
            rows.append(
                {
                    "model": f"{label} {name}",
                    "mode": mode,
                    "images_per_s": f"{m['images_per_s']:.1f}",
                    "median_ms": f"{m['median_ms']:.1f}",
                    "range": f"{m['min_ms']:.1f}-{m['max_ms']:.1f}",
                    "memory": "-" if memory is None else f"{memory / 2**20:,.0f} MiB",
                }
            )
    columns = [("model", "model"), ("mode", "mode"), ("images_per_s", "images/s"), ("median_ms", "median ms"), ("range", "min-max ms"), ("memory", "peak memory")]
    c, h, w = result["input"]
    method = f"median of {result['iters']} timed steps after {result['warmup']} warm-up"
    if result["peers"]:
        method += ", " + " and ".join(["archspec", *result["peers"]]) + " taking turns"
    threads = f"{result['threads']} thread{'s' if result['threads'] != 1 else ''}"
    lines = [
        f"{result['spec']} on {result['device']} ({result['device_name']}, torch {result['torch']}, {threads})",
        f"batch {result['batch']} x {c}x{h}x{w}, {settings(result)}; {method}",
        "",
        render(rows, columns, "table"),
    ]
    ratios_text = []
    for library, ratios in result["vs"].items():
        text = f"archspec / {library}: inference {ratios['throughput_ratio']:.3f}x"
        if "train_throughput_ratio" in ratios:
            text += f", training {ratios['train_throughput_ratio']:.3f}x"
        ratios_text.append(text + " (throughput ratio; above 1 means archspec is faster)")
    if ratios_text:
        lines += ["", *ratios_text]
    if result["device"] == "cpu":
        lines += ["", "peak memory is measured on CUDA only (torch.cuda.max_memory_allocated)"]
    return "\n".join(lines)


def summary_markdown(results: list[dict]) -> str:
    """Several bench results (JSON from `archspec bench --format json`) as one Markdown table."""
    from archspec.report.render import render

    libraries = list(dict.fromkeys(library for result in results for library in result["vs"]))
    rows = []
    for result in results:
        for mode, m in result["results"]["archspec"].items():
            row = {
                "spec": result["spec"],
                "mode": mode,
                "settings": settings(result),
                "batch": result["batch"],
                "archspec": f"{m['images_per_s']:,.1f}",
                "memory": "-" if m["peak_memory_bytes"] is None else f"{m['peak_memory_bytes'] / 2**30:.2f} GiB",
            }
            for library, ratios in result["vs"].items():
                row[library] = f"{result['results'][library][mode]['images_per_s']:,.1f}"
                row[f"ratio_{library}"] = f"{ratios['throughput_ratio' if mode == 'inference' else 'train_throughput_ratio']:.3f}"
            rows.append(row)
    columns = [("spec", "spec"), ("mode", "mode"), ("settings", "settings"), ("batch", "batch"), ("archspec", "archspec images/s")]
    for library in libraries:
        columns += [(library, f"{library} images/s"), (f"ratio_{library}", f"archspec / {library}")]
    columns.append(("memory", "archspec peak memory"))
    devices = sorted({f"{r['device_name']} ({r['device']}, torch {r['torch']})" for r in results})
    steps = sorted({f"median of {r['iters']} timed steps after {r['warmup']} warm-up" for r in results})
    header = f"Device: {'; '.join(devices)}. {'; '.join(steps).capitalize()}; the models take turns step by step."
    return header + "\n\n" + render(rows, columns, "markdown")


def main(argv: list[str]) -> int:
    """`python -m archspec.tools.bench summarize FILE.json...`: the Markdown table benchmarks/gpu.sh prints."""
    import json

    if len(argv) < 2 or argv[0] != "summarize":
        sys.stderr.write("usage: python -m archspec.tools.bench summarize RESULT.json...\n")
        return 2
    results = []
    for path in argv[1:]:
        with open(path, encoding="utf-8") as handle:
            results.append(json.load(handle))
    print(summary_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
