"""Checkpoints: the resolved spec and the state_dict in one file, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from archspec.errors import Mark, Problem, SpecError

FORMAT = "archspec-checkpoint"
VERSION = 1


def atomic_write(path: str | os.PathLike, write, force: bool = False) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place.

    An existing file is kept unless `force`; if `write` fails, nothing at `path` changes.
    """
    target = Path(path)
    if target.exists() and not force:
        raise SpecError(Problem(Mark(str(target)), "--out", "file exists; pass --force to overwrite it"))
    if target.is_dir():
        raise SpecError(Problem(Mark(str(target)), "--out", "is a folder; give a file name"))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(Problem(Mark(str(target)), "--out", f"folder {str(folder)!r} does not exist"))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(model, spec, path, force: bool = False) -> None:
    """Write the spec (as plain data) and the model's weights to `path`."""
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "spec": spec.model_dump(mode="json", exclude={"extends"}), "state_dict": state}
    atomic_write(path, lambda handle: torch.save(payload, handle), force=force)


def load_checkpoint(path, device="auto"):
    """Rebuild the model saved in `path`: validate the embedded spec, build it, load the weights (strict)."""
    import pickle
    import zipfile

    import torch

    from archspec.api import plan_from_spec
    from archspec.builder import build_from_plan
    from archspec.loader import validate
    from archspec.yamldoc import from_mapping

    source = str(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError(Problem(Mark(source), "", "no such checkpoint file")) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as exc:
        raise SpecError(Problem(Mark(source), "", f"not an archspec checkpoint ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpecError(Problem(Mark(source), "", "not an archspec checkpoint (written by `archspec build --out`)"))
    if payload.get("version") != VERSION:
        raise SpecError(Problem(Mark(source), "version", f"checkpoint version {payload.get('version')!r} is not supported (expected {VERSION})"))
    spec = validate(from_mapping(payload.get("spec"), source=f"{source} (embedded spec)"))
    model = build_from_plan(plan_from_spec(spec), device)
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise SpecError(Problem(Mark(source), "state_dict", "missing or not a mapping of tensors"))
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise SpecError(Problem(Mark(source), "state_dict", f"missing key {key!r} that the spec's model has"))
        if tuple(state[key].shape) != tuple(value.shape):
            raise SpecError(
                Problem(Mark(source), "state_dict", f"key {key!r} has shape {tuple(state[key].shape)}, the spec's model needs {tuple(value.shape)}")
            )
    for key in state:
        if key not in expected:
            raise SpecError(Problem(Mark(source), "state_dict", f"unexpected key {key!r} that the spec's model does not have"))
    model.load_state_dict(state, strict=True)
    return model
