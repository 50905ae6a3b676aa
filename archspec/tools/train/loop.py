"""`archspec train`: one recipe and one data set, each spec in turn, in one process or under torchrun.

Under `torchrun` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel
(gloo on the CPU, nccl on CUDA), every rank takes its share of each global batch
and only rank 0 prints or touches `--out` and `--plot`; what rank 0 reads there
(a previous run to resume) reaches the other ranks by broadcast, so multi-node
runs need no shared file system.

The data order is a function of (seed, epoch) alone and the epoch's state is
saved whole, so `--resume` continues an interrupted run to the same weights.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from archspec.errors import Mark, Problem, SpecError
from archspec.files import atomic_write, check_output
from archspec.report.results import TrainResult as Result
from archspec.tools.progress import Progress
from archspec.tools.train.data import DataSource, TrainData, load_data, parse_data, plan_for_data
from archspec.tools.train.recipe import Recipe
from archspec.tools.train.run_folder import (
    CHECKPOINT_FILE,
    RUN_FORMAT,
    STATE_FILE,
    STATE_FORMAT,
    RunLock,
    SavedState,
    check_optimizer_state,
    folder_name_problem,
    prepare_out,
    read_state,
    write_metrics,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from archspec.lang.schema import Spec
    from archspec.plan import Plan, Source

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How to run: these change the speed, not the recipe."""

    device: str = "auto"
    channels_last: bool = False
    compile: bool = False
    threads: int | None = None  # torch's CPU threads (None: torch's default, one per core)
    # After every epoch, the state to resume from and the curves so far; False: once, after the last epoch
    # (a study's member is short and is retrained whole when it stops, so its epochs need no saved state).
    save_every_epoch: bool = True


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process: the one that prints and writes files."""
    return os.environ.get("RANK", "0") == "0"


# --- distributed --------------------------------------------------------------------------------


@dataclass
class Cluster:
    """This process's place in a torchrun job (a job of one without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def share(self, value: T) -> T:
        """Rank 0's `value`, on every rank."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sums over all ranks."""
        if self.world == 1:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        totals: list[float] = tensor.tolist()
        return totals

    def on_writer(self, action: Callable[[], T]) -> T:
        """Run `action` on rank 0 only; every rank gets its result, or raises the SpecError it raised."""
        outcome: tuple[str, Any] | None = None
        if self.writer:
            try:
                outcome = ("ok", action())
            except SpecError as exc:
                outcome = ("error", exc.problems)
        shared = self.share(outcome)
        assert shared is not None  # rank 0 always has an outcome
        kind, value = shared
        if kind == "error":
            raise SpecError(value)
        result: T = value
        return result


def _cluster_from_environment() -> Cluster:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Cluster(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _join(cluster: Cluster, device: torch.device) -> torch.device:
    """Start the process group (env:// rendezvous from torchrun) and pick this rank's device."""
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", cluster.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if cluster.world > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


# --- the run folder (rank 0 only) ---------------------------------------------------------------


# --- training one spec --------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_order(size: int, cluster: Cluster, seed: int, epoch: int) -> torch.Tensor:
    """This rank's indices for the epoch. DistributedSampler shuffles with a generator seeded seed + epoch
    and deals index k to rank k mod world, so the ranks' k-th batches together are the single-process
    k-th batch: the global batch and data order do not depend on the number of processes."""
    import torch
    from torch.utils.data import DistributedSampler

    # The sampler only takes the length of its data set: a range stands for the images.
    sampler: DistributedSampler[int] = DistributedSampler(
        range(size),  # type: ignore[arg-type]
        num_replicas=cluster.world,
        rank=cluster.rank,
        shuffle=True,
        seed=seed,
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def train_spec(
    plan: Plan,
    data: TrainData,
    recipe: Recipe,
    options: Options,
    cluster: Cluster,
    device: torch.device,
    folder: Path | None,
    state: SavedState | None,
    progress: Progress,
    on_epoch_end: Callable[[str, int], object] | None = None,
    weights: Path | None = None,
) -> Result:
    """Train one planned spec from scratch, or on from `state`; rank 0 writes its files into `folder`."""
    import torch

    from archspec.counting.analytic import complexity
    from archspec.nn.builder import build_from_plan
    from archspec.nn.checkpoint import save_checkpoint

    spec = plan.spec
    c = complexity(plan)
    result = Result(spec.name, _is_residual(plan), c.layers, c.params)
    steps = data.train_size // recipe.batch
    if steps == 0:
        raise SpecError(
            Problem(
                Mark(f"--batch {recipe.batch}"),
                "batch",
                f"is larger than the {data.train_size} training images of --data {data.name}",
            )
        )
    local_batch = recipe.batch // cluster.world
    _seed_everything(recipe.seed)
    if weights is not None and state is None:
        from archspec.nn.weights import load_weights

        # Fine-tuning: start from published or earlier weights (a head of another size starts fresh).
        model, loaded = load_weights(plan, weights, device=device, force=True)
        progress.note(f"{spec.name}: {loaded}")
    else:
        model = build_from_plan(plan, device)
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=recipe.amp == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.amp or "")
    start = 0
    if state is not None:
        where = folder / STATE_FILE if folder is not None else Path(STATE_FILE)
        check_optimizer_state(state.optimizer, [tuple(p.shape) for p in model.parameters()], where)
        try:
            model.load_state_dict(state.model)
            optimizer.load_state_dict(state.optimizer)
            scaler.load_state_dict(state.scaler)
            # Dropout and drop path draw from torch's generator: continue it where the run stopped.
            torch.set_rng_state(state.rng)
            if device.type == "cuda" and state.cuda_rng is not None:
                torch.cuda.set_rng_state(state.cuda_rng, device)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError):
            raise SpecError(
                Problem(
                    Mark(str(where)), "resume", "the saved state does not fit this run; delete it to restart this spec"
                )
            ) from None
        result.history = list(state.history)
        start = state.epoch
        progress.note(f"{spec.name}: resuming after epoch {start}/{recipe.epochs}")
    net = model
    if cluster.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if options.compile:
        # torch.compile turns a module into a module (an OptimizedModule).
        net = cast("nn.Module", torch.compile(net))
    held = torch.arange(cluster.rank, int(data.held_y.shape[0]), cluster.world)
    warned = False

    for epoch in range(start, recipe.epochs):
        lr = recipe.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = _epoch_order(data.train_size, cluster, recipe.seed, epoch)
        augmentation = data.augmentation(recipe.seed, epoch)
        label = f"{spec.name} epoch {epoch + 1}/{recipe.epochs}"
        progress.phase(label, steps)
        started = time.perf_counter()
        batches = (order[step * local_batch : (step + 1) * local_batch] for step in range(steps))
        loss_sum, wrong = _train_epoch(
            net,
            optimizer,
            scaler,
            data,
            batches,
            augmentation,
            device,
            memory_format,
            amp_dtype,
            lambda step: progress.step(),
        )
        train_seconds = time.perf_counter() - started
        if cluster.world > 1:
            _share_buffers(model)
        held_wrong = _count_wrong(model, data, held, recipe.batch, device, memory_format, amp_dtype)
        totals = cluster.total(
            [loss_sum, float(wrong), float(steps * local_batch), float(held_wrong), float(held.numel())], device
        )
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": totals[0] / totals[2],
            "train_error": 100.0 * totals[1] / totals[2],
            "heldout_error": 100.0 * totals[3] / max(totals[4], 1.0),
            "seconds": round(time.perf_counter() - started, 3),
            "images_per_second": round(steps * recipe.batch / train_seconds, 1),
        }
        result.history.append(row)
        progress.note(
            f"{label}  loss {row['train_loss']:.4f}  train err {row['train_error']:.2f}%  held-out err "
            f"{row['heldout_error']:.2f}%"
            f"  lr {lr:.4g}  {row['images_per_second']:.0f} img/s  {row['seconds']:.1f} s"
        )
        chance = math.log(spec.head.num_classes)
        if math.isfinite(row["train_loss"]) and row["train_loss"] > 2 * chance and not warned:
            # Worse than guessing uniformly, by far: the run is diverging (the paper warms ResNet-110 up at 0.01).
            warned = True
            progress.note(
                f"archspec: warning: {spec.name}'s training loss {row['train_loss']:.3g} in epoch {epoch + 1} is "
                f"far above chance ({chance:.3g} for {spec.head.num_classes} classes): the run is diverging; a "
                "lower --lr may help"
            )
        if not math.isfinite(row["train_loss"]):
            # A diverged run: keep its metrics to look at, but no state to resume from and no checkpoint.
            if folder is not None:
                write_metrics(folder, result.history)
            raise SpecError(
                Problem(
                    Mark(f"--lr {recipe.lr}"),
                    "lr",
                    f"{spec.name}'s training loss became {row['train_loss']} in epoch {epoch + 1}; training "
                    "stopped (a lower --lr may help)",
                )
            )
        last = epoch + 1 == recipe.epochs
        if folder is not None and (options.save_every_epoch or last):
            _save_state(folder, model, optimizer, scaler, epoch + 1, result.history, spec, recipe, device)
            write_metrics(folder, result.history)
        if on_epoch_end is not None:
            on_epoch_end(spec.name, epoch + 1)
    if folder is not None:
        save_checkpoint(model, spec, folder / CHECKPOINT_FILE, force=True)
    return result


def _train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: TrainData,
    batches: Iterable[torch.Tensor],
    augmentation: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
    memory_format: torch.memory_format,
    amp_dtype: torch.dtype | None,
    tick: Callable[[int], object],
) -> tuple[float, int]:
    """One pass of SGD over `batches` (index tensors); returns this rank's summed loss and wrong answers."""
    import torch
    import torch.nn.functional as F

    net.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = torch.zeros((), dtype=torch.long, device=device)
    for step, indices in enumerate(batches, 1):
        x, y = data.train_batch(indices, augmentation)
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # Tensor.backward is unannotated
        scaler.step(optimizer)
        scaler.update()
        # Summed on the device: reading a number back each step would stall a GPU.
        loss_sum += loss.detach().double() * y.shape[0]
        wrong += (logits.detach().argmax(1) != y).sum()
        tick(step)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return loss_sum.item(), int(wrong.item())


def _share_buffers(model: nn.Module) -> None:
    """Rank 0's batch-norm statistics on every rank: DDP sends them at each training forward pass, but the
    last step updated each rank's copy with its own images; evaluation and the checkpoint use rank 0's."""
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def _count_wrong(
    net: nn.Module,
    data: TrainData,
    indices: torch.Tensor,
    batch: int,
    device: torch.device,
    memory_format: torch.memory_format,
    amp_dtype: torch.dtype | None,
) -> int:
    import torch

    net.eval()
    wrong = 0
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for start in range(0, indices.numel(), max(batch, 256)):
            x, y = data.held_batch(indices[start : start + max(batch, 256)])
            logits = net(x.to(device).contiguous(memory_format=memory_format))
            wrong += int((logits.argmax(1).cpu() != y).sum())
    return wrong


def _save_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    history: list[dict[str, float]],
    spec: Spec,
    recipe: Recipe,
    device: torch.device,
) -> None:
    import torch

    state = {
        "format": STATE_FORMAT,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "history": history,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "spec": spec.model_dump(mode="json", exclude={"extends"}),
        "recipe": asdict(recipe),
    }
    atomic_write(folder / STATE_FILE, lambda handle: torch.save(state, handle), force=True)


def _is_residual(plan: Plan) -> bool:
    from archspec.plan.blocks import BLOCKS, stage_knobs

    return any(BLOCKS[stage_knobs(plan.spec, stage).type].residual for stage in plan.stages)


# --- the whole run ------------------------------------------------------------------------------


def _plans(specs: Sequence[Source], source: DataSource, overrides: Sequence[str]) -> list[Plan]:
    plans: list[Plan] = []
    for ref in specs:
        plan = plan_for_data(ref, source, tuple(overrides))
        if plan.taps is not None:
            raise SpecError(
                Problem(
                    Mark(str(ref)), "head.features", "this spec returns feature maps; training needs a classifier head"
                )
            )
        plans.append(plan)
    names = [plan.spec.name for plan in plans]
    for ref, name in zip(specs, names, strict=True):
        # The name becomes a folder under --out; it must stay a single folder inside it.
        problem = folder_name_problem(name)
        if problem is not None:
            raise SpecError(Problem(Mark(str(ref)), "name", problem))
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SpecError(
            Problem(
                Mark(" ".join(map(str, specs))),
                "name",
                f"specs share the name {', '.join(twice)}; each spec's results are kept under its name",
            )
        )
    return plans


def _resolve(options: Options, recipe: Recipe, cluster: Cluster) -> torch.device:
    from archspec.nn.builder import resolve_device
    from archspec.nn.device import check_amp, check_compile

    device = resolve_device(options.device)
    check_amp(recipe.amp, device)
    if options.compile:
        check_compile()
    if recipe.batch % cluster.world:
        raise SpecError(
            Problem(
                Mark(f"--batch {recipe.batch}"),
                "batch",
                f"the global batch must divide evenly among the {cluster.world} processes",
            )
        )
    return device


def _check_plot(plot: Path, force: bool) -> None:
    if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise SpecError(Problem(Mark(f"--plot {plot}"), "plot", "name a .png, .svg or .pdf file"))
    check_output(plot, force=force, option="--plot")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SpecError(
            Problem(Mark(f"--plot {plot}"), "plot", "needs matplotlib: pip install 'archspec[train]'")
        ) from None


_DEFAULT_RECIPE = Recipe()


def train(
    specs: Sequence[Source],
    data: str = "digits",
    recipe: Recipe = _DEFAULT_RECIPE,
    options: Options = Options(),
    overrides: Sequence[str] = (),
    out: Path | None = None,
    resume: bool = False,
    force: bool = False,
    plot: Path | None = None,
    progress: Progress | None = None,
    on_epoch_end: Callable[[str, int], object] | None = None,
    weights: Path | None = None,
) -> list[Result]:
    """Train each spec in turn with the same data, seed and recipe; return their metrics.

    `on_epoch_end(name, epoch)` is called after each finished (and saved) epoch. `weights` is the
    starting point of every spec (fine-tuning); a resumed spec continues from its saved state instead.
    `force` starts over in an --out that holds a previous run, overwrites --plot and skips the memory check.
    """
    progress = progress or Progress(prefix="", enabled=is_main_process())
    source = parse_data(data)
    if resume and out is None:
        raise SpecError(Problem(Mark("--resume"), "resume", "needs --out DIR, the folder of the run to continue"))
    plans = _plans(specs, source, overrides)
    cluster = _cluster_from_environment()
    device = _resolve(options, recipe, cluster)
    out = Path(out) if out is not None else None
    plot = Path(plot) if plot is not None else None
    _check_memory(plans, source, recipe, cluster, device, force)
    import torch
    import torch.distributed as dist

    if options.threads is not None:
        # On a shared CPU, fewer OpenMP threads than cores avoid stalls when another job takes a core.
        torch.set_num_threads(options.threads)

    device = _join(cluster, device)
    lock = RunLock(out) if out is not None else None
    try:
        names = [plan.spec.name for plan in plans]
        record = {
            "format": RUN_FORMAT,
            "version": 1,
            "data": source.text,
            "recipe": asdict(recipe),
            "world_size": cluster.world,
        }

        def check_outputs() -> None:
            if plot is not None:
                _check_plot(plot, force)
            if out is not None:
                if not out.exists() and out.parent.is_dir():
                    out.mkdir()
                if out.is_dir() and lock is not None:
                    lock.acquire(progress.note)
                prepare_out(out, record, names, resume, force)

        cluster.on_writer(check_outputs)
        if cluster.world > 1:
            progress.note(
                f"archspec: {cluster.world} processes ({dist.get_backend()}), {recipe.batch // cluster.world} "
                f"images each per step of {recipe.batch}"
            )
        results: list[Result] = []
        cache: dict[tuple[int, tuple[int, int], int], TrainData] = {}
        for plan in plans:
            key = (plan.input_channels, plan.input_size, plan.spec.head.num_classes)
            if key not in cache:
                cache[key] = load_data(source, *key)
            folder = out / plan.spec.name if out is not None else None
            spec_data = plan.spec.model_dump(mode="json", exclude={"extends"})
            state = None
            if resume and folder is not None:  # --resume comes with --out
                state = cluster.on_writer(partial(read_state, folder, plan, spec_data, recipe))
            writer_folder = folder if cluster.writer else None
            results.append(
                train_spec(
                    plan,
                    cache[key],
                    recipe,
                    options,
                    cluster,
                    device,
                    writer_folder,
                    state,
                    progress,
                    on_epoch_end,
                    weights,
                )
            )
        if plot is not None and cluster.writer:
            plot_curves(results, plot)
            progress.note(f"archspec: wrote {plot}")
        return results
    finally:
        if lock is not None:
            lock.release()
        if cluster.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _check_memory(
    plans: list[Plan], source: DataSource, recipe: Recipe, cluster: Cluster, device: torch.device, force: bool
) -> None:
    """The memory guard for every spec: weights, gradients and momentum, a training step at this process's
    share of the batch, and the data set held in memory."""
    from archspec.nn.guard import check_fits

    for plan in plans:
        data_bytes = source.estimated_bytes(plan.input_channels, plan.input_size)
        check_fits(
            plan,
            device,
            max(1, recipe.batch // cluster.world),
            mode="train",
            extra_bytes=data_bytes,
            extra_what=f"--data {source.text}",
            force=force,
            source=plan.spec.name,
        )


# --- the chart ----------------------------------------------------------------------------------


def curves_title(results: Sequence[Result]) -> str:
    """What the chart's line styles mean, for the kinds of net it holds."""
    kinds = {result.residual for result in results}
    if kinds == {True, False}:
        return "plain nets dashed, residual nets solid"
    return "residual nets" if kinds == {True} else "plain nets (no shortcuts)"


def plot_curves(results: list[Result], path: Path) -> None:
    """Training loss and held-out error per epoch, one line per spec: plain nets dashed, residual solid
    (the paper's Figure 6); nets of the same depth share a colour. A run of one epoch is one marked point."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from archspec.tools.plot import plain_text

    depths = sorted({r.layers for r in results})
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    loss_axes, error_axes = figure.subplots(1, 2)
    for result in results:
        epochs = [row["epoch"] for row in result.history]
        style = {
            "color": f"C{depths.index(result.layers) % 10}",
            "linestyle": "-" if result.residual else "--",
            "linewidth": 1.6,
            "label": plain_text(result.name),
            # A line needs two points: a single epoch is drawn as a marker.
            "marker": "o" if len(epochs) == 1 else None,
        }
        loss_axes.plot(epochs, [row["train_loss"] for row in result.history], **style)
        error_axes.plot(epochs, [row["heldout_error"] for row in result.history], **style)
    loss_axes.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    error_axes.set(xlabel="epoch", ylabel="held-out error (%)", title="held-out error")
    for axes in (loss_axes, error_axes):
        axes.grid(True, alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axes.legend(fontsize=8, ncols=2)
    figure.suptitle(curves_title(results))
    fmt = path.suffix.lower().lstrip(".")
    atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, dpi=120), force=True)


__all__ = ["Options", "Recipe", "curves_title", "is_main_process", "plot_curves", "train", "train_spec"]
