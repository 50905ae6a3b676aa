"""The folder of an `archspec train --out` run: `run.json`, one folder per spec (metrics, `state.pt` to resume,
`model.pt`), and a lock that keeps a second run out while the first writes.

Everything read back on `--resume` is checked as strictly as the same thing given on the command
line: spec names must name one folder inside `--out`, the recipe must be a recipe, and a saved
state must be a state of this spec's model; anything else is one located message.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from archspec.errors import Mark, Problem, SpecError, printable, shorten
from archspec.files import atomic_write
from archspec.report.render import finite
from archspec.tools.train.recipe import Recipe

RUN_FILE = "run.json"
STATE_FILE = "state.pt"
CHECKPOINT_FILE = "model.pt"
LOCK_FILE = ".archspec-train.lock"
METRICS_FILES = ("metrics.jsonl", "metrics.csv")
METRIC_KEYS = ("epoch", "lr", "train_loss", "train_error", "heldout_error", "seconds", "images_per_second")
RUN_FORMAT = "archspec-train"
STATE_FORMAT = f"{RUN_FORMAT}-state"


def out_problem(out: Path, message: str) -> SpecError:
    return SpecError(Problem(Mark(f"--out {shorten(str(out), 200)}"), "out", message))


def folder_name_problem(name: str) -> str | None:
    """Why `name` cannot be one folder inside --out, or None."""
    if name in (".", "..") or "/" in name or os.sep in name or "\x00" in name:
        return f"{shorten(repr(name))} cannot name a folder; give the spec a name without slashes"
    if name in (RUN_FILE, LOCK_FILE):
        return f"{shorten(repr(name))} is the name of the run's own file in --out; give the spec another name"
    if not name.isprintable() or len(name.encode("utf-8", "surrogateescape")) > 200:
        return f"{shorten(repr(name))} cannot name a folder: keep it to one line of at most 200 bytes"
    return None


def _entry(path: Path, out: Path) -> os.stat_result | None:
    """`path`'s own status (a link is not followed), or None when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise out_problem(out, f"cannot use {shorten(str(path), 200)!r}: {exc.strerror or exc}") from None


def check_entries(out: Path, names: list[str]) -> None:
    """Refuse anything in `out` that archspec would read, replace or delete through: a symbolic link (it would
    reach files outside the folder), and a FIFO, a device or a socket where a file or a folder of the run goes."""

    def refuse(path: Path, what: str) -> SpecError:
        return out_problem(out, f"{shorten(str(path.relative_to(out)), 200)!r} {what}; archspec leaves it alone")

    link = "is a symbolic link, which a run does not follow"
    for file in (RUN_FILE, LOCK_FILE):
        info = _entry(out / file, out)
        if info is not None and stat.S_ISLNK(info.st_mode):
            raise refuse(out / file, link)
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise refuse(out / file, "is not a regular file (a folder, device, FIFO or socket)")
    for name in names:
        folder = out / name
        info = _entry(folder, out)
        if info is None:
            continue
        if stat.S_ISLNK(info.st_mode):
            raise refuse(folder, link)
        if not stat.S_ISDIR(info.st_mode):
            raise refuse(folder, "is not a folder, and the spec's results go into a folder of its name")
        for file in (STATE_FILE, CHECKPOINT_FILE, *METRICS_FILES):
            info = _entry(folder / file, out)
            if info is not None and stat.S_ISLNK(info.st_mode):
                raise refuse(folder / file, link)
            if info is not None and not stat.S_ISREG(info.st_mode):
                raise refuse(folder / file, "is not a regular file (a folder, device, FIFO or socket)")


# --- the lock -------------------------------------------------------------------------------------


class RunLock:
    """`--out/.archspec-train.lock`, created exclusively; it names the process that holds it.

    A lock left by a process that no longer runs on this host is taken over (with a note); a live one
    makes the second run refuse with the first one's process id.
    """

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE
        self.held = False

    def acquire(self, note: Any = None) -> None:
        info = _entry(self.path, self.path.parent)
        if info is not None and not stat.S_ISREG(info.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            if stat.S_ISDIR(info.st_mode):
                what = "a folder"
            raise out_problem(
                self.path.parent,
                f"the lock {LOCK_FILE} is {what}; archspec takes and removes a plain file of that name only "
                "(remove it by hand when no run is writing here)",
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and self._alive(holder):
                    raise out_problem(
                        self.path.parent,
                        f"another archspec train (process {holder.get('pid')} on {printable(str(holder.get('host')))}, "
                        f"started {printable(str(holder.get('started')))}) is writing to this folder; wait for it, "
                        "or use another --out",
                    ) from None
                if note is not None:
                    note(f"archspec: removing the lock of a run that ended without releasing it ({self.path})")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(record, handle)
            self.held = True
            return
        raise out_problem(self.path.parent, "cannot take the run folder's lock; another run is starting in it")

    def _holder(self) -> dict[str, Any] | None:
        try:
            # Never through a link, never blocked by a FIFO put there meanwhile; a lock is a few dozen bytes.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return None
                data = json.loads(handle.read(4096).decode("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _alive(holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return False
        if holder.get("host") != socket.gethostname():
            return True  # another host's process cannot be asked; assume it runs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OverflowError:
            return False
        return True

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


# --- run.json -------------------------------------------------------------------------------------


def _recipe_fields() -> dict[str, Any]:
    return {f.name: f.type for f in fields(Recipe)}


def read_run(out: Path) -> dict[str, Any]:
    """The previous run's record, checked field by field."""
    run_file = out / RUN_FILE
    if not run_file.is_file():
        raise out_problem(out, "holds no previous run to resume (no run.json); start one without --resume")
    try:
        previous = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise out_problem(out, f"run.json is not readable ({shorten(str(exc))})") from None
    if not isinstance(previous, dict) or previous.get("format") != RUN_FORMAT or previous.get("version") != 1:
        raise out_problem(out, "run.json is not the record of an archspec train run")
    if not isinstance(previous.get("data"), str):
        raise out_problem(out, "run.json: `data` is missing or not text")
    recipe = previous.get("recipe")
    expected = _recipe_fields()
    if not isinstance(recipe, dict) or set(recipe) != set(expected):
        raise out_problem(out, f"run.json: `recipe` must have exactly {', '.join(expected)}")
    specs = previous.get("specs")
    if not isinstance(specs, list) or not all(isinstance(name, str) for name in specs):
        raise out_problem(out, "run.json: `specs` must be a list of spec names")
    for name in specs:
        problem = folder_name_problem(name)
        if problem is not None:
            raise out_problem(out, f"run.json names a spec {problem}")
    return previous


def check_recipe(previous: dict[str, Any], record: dict[str, Any], out: Path) -> None:
    """The options of a resumed run must be the previous run's, but for `--epochs`, which may grow."""
    try:
        Recipe(**previous["recipe"])
    except (SpecError, TypeError) as exc:
        reason = exc.problems[0].message if isinstance(exc, SpecError) else shorten(str(exc))
        raise out_problem(out, f"run.json: `recipe` is not a valid recipe ({reason})") from None
    changes = []
    if previous.get("data") != record["data"]:
        changes.append(f"--data {printable(str(previous.get('data')))}")
    for key, value in record["recipe"].items():
        old = previous["recipe"].get(key)
        if key != "epochs" and old != value:
            changes.append(f"--{key.replace('_', '-')} {old} (now {value})")
    if changes:
        raise out_problem(
            out, f"the previous run used {', '.join(changes)}; resume with the same options, or start a new --out"
        )


def prepare_out(out: Path, record: dict[str, Any], names: list[str], resume: bool, force: bool) -> list[str]:
    """Check that `out` may take this run (a fresh run never writes over a previous one unasked), record it, and
    return every spec name of the run (a resumed run keeps the previous run's)."""
    if out.exists() and not out.is_dir():
        raise out_problem(out, "is a file; give a folder")
    if not out.parent.is_dir() and not out.exists():
        raise out_problem(out, f"folder {shorten(str(out.parent), 200)!r} does not exist")
    run_file = out / RUN_FILE
    check_entries(out, names)
    if resume:
        previous = read_run(out)
        check_entries(out, previous["specs"])
        check_recipe(previous, record, out)
        names = list(dict.fromkeys(previous["specs"] + names))
    elif out.is_dir() and any(entry.name != LOCK_FILE for entry in out.iterdir()):
        if not force and run_file.exists():
            raise out_problem(out, "holds a previous run; pass --resume to continue it, or --force to start it over")
        if not force:
            raise out_problem(out, "is not empty; give a new or empty folder, or pass --force to write into it")
        for name in names:
            # Starting over: the named specs' own files go, so a later --resume cannot pick up stale state.
            for file in (STATE_FILE, CHECKPOINT_FILE, *METRICS_FILES):
                (out / name / file).unlink(missing_ok=True)
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    text = json.dumps({**record, "specs": names}, indent=2) + "\n"
    atomic_write(run_file, lambda handle: handle.write(text.encode()), force=True)
    return names


def write_metrics(folder: Path, history: list[dict[str, float]]) -> None:
    jsonl = "".join(json.dumps(finite(row)) + "\n" for row in history)
    table = io.StringIO()
    writer = csv.DictWriter(table, METRIC_KEYS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    for name, text in zip(METRICS_FILES, (jsonl, table.getvalue()), strict=True):

        def write(handle: BinaryIO, text: str = text) -> int:
            return handle.write(text.encode())

        atomic_write(folder / name, write, force=True)


# --- state.pt -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedState:
    """A spec's training state after its last finished epoch, checked against the spec and the recipe."""

    epoch: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    history: list[dict[str, float]]
    rng: Any
    cuda_rng: Any


def _state_problem(path: Path, message: str) -> SpecError:
    return SpecError(Problem(Mark(str(path)), "resume", f"{message}; delete it to restart this spec"))


def read_state(folder: Path, plan: Any, spec_data: dict[str, Any], recipe: Any) -> SavedState | None:
    """The state saved after the last finished epoch of this spec, or None; anything that does not fit is an error."""
    import torch

    from archspec.nn.checkpoint import check_values, checked_tensors, mismatch_message, torch_file

    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch_file(path, "state file", "a saved training state", "resume")
    except SpecError as exc:
        raise _state_problem(path, f"cannot read the saved state ({exc.problems[0].message})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise _state_problem(path, "this is not a saved training state")
    if state.get("spec") != spec_data:
        raise SpecError(
            Problem(
                Mark(str(path)),
                "resume",
                f"spec {printable(repr(spec_data['name']))} changed since the previous run; train it into a new --out",
            )
        )
    saved_recipe = state.get("recipe")
    current = {k: v for k, v in _as_dict(recipe).items() if k != "epochs"}
    if not isinstance(saved_recipe, dict) or {k: v for k, v in saved_recipe.items() if k != "epochs"} != current:
        raise SpecError(
            Problem(Mark(str(path)), "resume", "this state was trained with another recipe; start a new --out")
        )
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise _state_problem(path, "the saved state's epoch is missing or not a positive whole number")
    if epoch > recipe.epochs:
        raise SpecError(
            Problem(
                Mark(f"--epochs {recipe.epochs}"),
                "epochs",
                f"the saved state of {printable(spec_data['name'])} is at epoch {epoch}, past --epochs "
                f"{recipe.epochs}; resume with --epochs {epoch} or more",
            )
        )
    try:
        model = checked_tensors(state.get("model"), str(path), "model")
    except SpecError as exc:
        raise _state_problem(path, exc.problems[0].message) from None
    message = mismatch_message({k: tuple(v.shape) for k, v in model.items()}, plan)
    if message is not None:
        raise _state_problem(path, f"the saved weights {message}")
    try:
        check_values(model, str(path), "model")
    except SpecError as exc:
        raise _state_problem(path, f"the saved weights: {exc.problems[0].message}") from None
    history = state.get("history")
    if not isinstance(history, list) or len(history) != epoch or not all(_is_metrics(row) for row in history):
        raise _state_problem(path, "the saved metrics do not match the saved epoch")
    for key in ("optimizer", "scaler"):
        if not isinstance(state.get(key), dict):
            raise _state_problem(path, f"the saved {key} state is missing")
    rng = state.get("rng")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.dim() != 1:
        raise _state_problem(path, "the saved random-number state is missing or damaged")
    cuda_rng = state.get("cuda_rng")
    if cuda_rng is not None and (not isinstance(cuda_rng, torch.Tensor) or cuda_rng.dtype != torch.uint8):
        raise _state_problem(path, "the saved CUDA random-number state is damaged")
    return SavedState(epoch, model, state["optimizer"], state["scaler"], history, rng, cuda_rng)


def check_optimizer_state(saved: dict[str, Any], shapes: list[tuple[int, ...]], path: Path) -> None:
    """The saved SGD state checked like the weights before torch loads it: one group over every parameter, and
    each momentum buffer a plain floating-point tensor of its parameter's shape (torch would copy or cast
    whatever it is given)."""
    from archspec.nn.checkpoint import checked_tensors

    groups = saved.get("param_groups")
    if (
        not isinstance(groups, list)
        or len(groups) != 1
        or not isinstance(groups[0], dict)
        or groups[0].get("params") != list(range(len(shapes)))
    ):
        raise _state_problem(path, f"the saved optimizer state is not one group over the model's {len(shapes)} tensors")
    for key in ("lr", "momentum", "weight_decay", "dampening"):
        value = groups[0].get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise _state_problem(path, f"the saved optimizer's `{key}` is missing or not a finite number")
    per_tensor = saved.get("state")
    if not isinstance(per_tensor, dict) or not set(per_tensor) <= set(range(len(shapes))):
        raise _state_problem(path, "the saved optimizer state names tensors the model does not have")
    buffers: dict[str, Any] = {}
    for index, entry in per_tensor.items():
        if not isinstance(entry, dict) or set(entry) - {"momentum_buffer"}:
            raise _state_problem(path, f"the saved optimizer state of tensor {index} is not SGD's momentum")
        if entry.get("momentum_buffer") is not None:
            buffers[str(index)] = entry["momentum_buffer"]
    if not buffers:
        return
    try:
        tensors = checked_tensors(buffers, str(path), "optimizer")
    except SpecError as exc:
        raise _state_problem(path, f"the saved optimizer state: {exc.problems[0].message}") from None
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != shapes[int(key)]:
            raise _state_problem(
                path,
                f"the saved momentum of tensor {key} is {'x'.join(map(str, tensor.shape)) or 'a scalar'}, its weight "
                f"{'x'.join(map(str, shapes[int(key)])) or 'a scalar'}",
            )
        if not tensor.is_floating_point() or not bool(tensor.isfinite().all()):
            raise _state_problem(path, f"the saved momentum of tensor {key} is not finite floating-point numbers")


def _as_dict(recipe: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(recipe)


def _is_metrics(row: object) -> bool:
    if not isinstance(row, Mapping) or set(row) != set(METRIC_KEYS):
        return False
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and (math.isfinite(v) or k in ("train_loss",))
        for k, v in row.items()
    )
