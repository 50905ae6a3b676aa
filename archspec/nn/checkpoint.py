"""Checkpoints: the resolved spec and the state_dict in one file, written atomically."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from archspec.errors import Mark, Problem, SpecError, shorten

FORMAT = "archspec-checkpoint"
VERSION = 1


def atomic_write(path: str | os.PathLike, write, force: bool = False) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place.

    An existing file is kept unless `force`; if `write` fails, nothing at `path` changes.
    """
    target = Path(path)
    if target.is_dir():
        raise SpecError(Problem(Mark(str(target)), "--out", "is a folder; give a file name"))
    if target.exists() and not force:
        raise SpecError(Problem(Mark(str(target)), "--out", "file exists; pass --force to overwrite it"))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(Problem(Mark(str(target)), "--out", f"folder {str(folder)!r} does not exist"))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SpecError(Problem(Mark(str(target)), "--out", f"cannot write in {str(folder)!r}: {exc.strerror or exc}")) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise SpecError(Problem(Mark(str(target)), "--out", f"cannot write the file: {exc.strerror or exc}; nothing was changed")) from None
        raise


def _is_text(path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    try:
        return bool(head) and b"\x00" not in head and bool(head.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return type(exc).__name__ + (": " + shorten(text.splitlines()[0]) if text else "")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(model, spec, path, force: bool = False) -> None:
    """Write the spec (as plain data) and the model's weights to `path`."""
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "spec": spec.model_dump(mode="json", exclude={"extends"}), "state_dict": state}
    atomic_write(path, lambda handle: torch.save(payload, handle), force=force)


def load_checkpoint(path, *, device="auto"):
    """Rebuild the model saved in `path`: validate the embedded spec, build it, load the weights (strict)."""
    import pickle

    import torch

    from archspec.lang.yamldoc import from_mapping
    from archspec.nn.builder import build_from_plan
    from archspec.plan.load import plan_document

    source = str(path)
    if Path(path).is_dir():
        raise SpecError(Problem(Mark(source), "", "is a folder, not a checkpoint file"))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError(Problem(Mark(source), "", "no such checkpoint file")) from None
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            reason = "it holds pickled Python objects, and archspec loads tensors and plain data only (weights_only=True)"
        else:
            reason = f"torch cannot read it ({_first_line(exc)})"
        raise SpecError(Problem(Mark(source), "", f"not an archspec checkpoint: {reason}")) from None
    except Exception as exc:  # torch.load fails on foreign bytes with many types (KeyError, RuntimeError, EOFError, ...)
        if os.path.getsize(path) == 0:
            reason = "the file is empty"
        elif _is_text(path):
            reason = "it is a text file (a spec?), not a torch file"
        else:
            reason = f"torch cannot read it ({_first_line(exc)})"
        raise SpecError(Problem(Mark(source), "", f"not an archspec checkpoint: {reason}")) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpecError(Problem(Mark(source), "", "not an archspec checkpoint: a torch file, but not one written by `archspec build --out`"))
    if payload.get("version") != VERSION:
        raise SpecError(Problem(Mark(source), "version", f"checkpoint version {payload.get('version')!r} is not supported (expected {VERSION})"))
    embedded = f"{source} (embedded spec)"
    plan = plan_document(from_mapping(payload.get("spec"), source=embedded))
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise SpecError(Problem(Mark(source), "state_dict", "missing or not a mapping of tensors"))
    model = build_from_plan(plan, device)
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise SpecError(Problem(Mark(source), "state_dict", f"missing key {key!r} that the spec's model has"))
        if not isinstance(state[key], torch.Tensor):
            raise SpecError(Problem(Mark(source), "state_dict", f"key {key!r} holds {type(state[key]).__name__}, not a tensor"))
        if tuple(state[key].shape) != tuple(value.shape):
            raise SpecError(
                Problem(Mark(source), "state_dict", f"key {key!r} has shape {tuple(state[key].shape)}, the spec's model needs {tuple(value.shape)}")
            )
    for key in state:
        if key not in expected:
            raise SpecError(Problem(Mark(source), "state_dict", f"unexpected key {shorten(repr(key))} that the spec's model does not have"))
    model.load_state_dict(state, strict=True)
    return model
