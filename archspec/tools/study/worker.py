"""Training one member of a study, in whichever process runs it (a Ray worker, or this one).

The member is trained by `archspec train`'s own loop (`train_spec`) with the study's recipe, so its curves,
saved state and checkpoint end in its folder as `archspec train --out` leaves them (written once, after the
last epoch: a member stopped part-way is trained again from its start). Whatever goes
wrong with one member (a loss that diverges, memory that runs out, a spec the data does not fit) becomes
its failed record; it never stops the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.errors import SpecError
from archspec.tools.study.records import MemberRecord
from archspec.tools.train.recipe import Recipe

if TYPE_CHECKING:
    from archspec.tools.train.data import TrainData

# Data sets loaded by this process, kept for the next member it trains (a worker trains many).
_DATA: dict[tuple[str, int, tuple[int, int], int], TrainData] = {}


@dataclass(frozen=True)
class MemberTask:
    """Everything a worker needs to train one member; paths are absolute, so any worker can run it."""

    population: str
    name: str
    spec: str
    folder: str
    data: str
    recipe: Recipe
    threads: int
    device: str
    params: int
    flops: int
    resume: bool


def train_member(task: MemberTask) -> MemberRecord:
    """Train one member with the study's recipe and return its record (failed, with the reason, if it failed)."""
    import torch

    # Each member computes with the same number of threads whatever the number of workers: the sums of a
    # convolution are split by thread, so this keeps the errors identical from one worker to many.
    torch.set_num_threads(task.threads)
    started = time.perf_counter()
    try:
        loss, error = _train(task)
    except SpecError as exc:
        return _failed(task, exc.problems[0].message, started)
    except (torch.OutOfMemoryError, MemoryError):
        return _failed(task, "out of memory", started)
    except Exception as exc:  # torch's own failures (a kernel without this dtype, a lost device, ...) end one member
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _failed(task, f"{type(exc).__name__}: {first}", started)
    return MemberRecord(
        task.population,
        task.name,
        task.spec,
        "ok",
        error,
        loss,
        task.params,
        task.flops,
        task.recipe.epochs,
        round(time.perf_counter() - started, 3),
    )


def _failed(task: MemberTask, reason: str, started: float) -> MemberRecord:
    return MemberRecord(
        task.population,
        task.name,
        task.spec,
        "failed",
        None,
        None,
        task.params,
        task.flops,
        task.recipe.epochs,
        round(time.perf_counter() - started, 3),
        reason,
    )


def _train(task: MemberTask) -> tuple[float, float]:
    from archspec.nn.builder import resolve_device
    from archspec.tools.progress import Progress
    from archspec.tools.train.data import load_data, parse_data, plan_for_data
    from archspec.tools.train.loop import Cluster, Options, train_spec
    from archspec.tools.train.run_folder import read_state

    source = parse_data(task.data)
    plan = plan_for_data(task.spec, source)
    key = (source.text, plan.input_channels, plan.input_size, plan.spec.head.num_classes)
    if key not in _DATA:
        _DATA[key] = load_data(source, *key[1:])
    folder = Path(task.folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = None
    if task.resume:
        spec_data = plan.spec.model_dump(mode="json", exclude={"extends"})
        try:
            # A member whose training ended but whose record was not written yet (the study stopped in
            # between) is not trained again: its saved state holds its last epoch.
            state = read_state(folder, plan, spec_data, task.recipe)
        except SpecError:
            state = None  # a state that does not fit is not this study's: train the member afresh
    device = resolve_device(task.device)
    result = train_spec(
        plan,
        _DATA[key],
        task.recipe,
        # A member stopped part-way is retrained whole (its record is what a study keeps), so its state and
        # curves are written once, after the last epoch, rather than after every one.
        Options(task.device, save_every_epoch=False),
        Cluster(),
        device,
        folder,
        state,
        Progress(enabled=False),
    )
    last = result.history[-1]
    return float(last["train_loss"]), float(last["heldout_error"]) / 100.0
