"""Checkpoints: the resolved spec, the state_dict and a checksum of the weights in one file, written atomically.

Reading one trusts nothing in it: torch's weights-only loader (no pickled objects), the
embedded spec validated like any spec, every tensor checked to be a plain dense real tensor,
the checksum compared, and the keys and shapes compared with the spec's plan before a single
parameter is allocated.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.files import atomic_write, check_input_file
from archspec.lang.schema import Spec
from archspec.plan.ops import Plan
from archspec.plan.tensors import compare_state, describe_key

FORMAT = "archspec-checkpoint"
VERSION = 2  # 2 adds `sha256`; version 1 files (no checksum) still load
_LISTED = 4  # keys named per kind of mismatch before "and N more"


def _head(path: str | os.PathLike[str], size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _is_text(head: bytes) -> bool:
    try:
        return bool(head) and b"\x00" not in head and bool(head.decode("utf-8"))
    except UnicodeDecodeError:
        return False


# torch's files before 1.6 are a bare pickle stream that starts with this magic number; the storages' sizes come
# from the stream itself, so such a file cannot be checked before it is read and allocated whole.
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _unreadable(exc: BaseException) -> str:
    """What a failure of torch's reader means to the user, without torch's class names or C++ text."""
    text = str(exc)
    if "weights only" in text.lower() or "weights_only" in text:
        return "it holds pickled Python objects, and archspec loads tensors and plain data only (weights_only=True)"
    if "wrong byte size" in text or ("size" in text and ("storage" in text or "record" in text)):
        return _SHORT_RECORD
    if "zip" in text.lower() or "PytorchStreamReader" in text:
        return "its zip archive is truncated or damaged"
    return "the file is damaged or is not a torch file"


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every key, dtype, shape and the tensor's bytes, in key order (a contiguous tensor is hashed in
    place, without a copy)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, spec: Spec, path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write the spec (as plain data), the model's weights and their checksum to `path`."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.model_dump(mode="json", exclude={"extends"}),
        "state_dict": state,
        "sha256": state_digest(state),
    }
    atomic_write(path, lambda handle: torch.save(payload, handle), force=force)


def _problem(source: str, path: str, message: str) -> SpecError:
    return SpecError(Problem(Mark(source), path, message))


def torch_file(
    path: str | os.PathLike[str],
    noun: str = "checkpoint file",
    what: str = "an archspec checkpoint",
    field: str = "checkpoint",
) -> Any:
    """What torch's weights-only loader reads from `path` (memory-mapped); one-line errors for anything else.

    The file is checked before torch reads it: a regular file (never a FIFO or a device), not empty, not text,
    and a zip archive (torch's format since 1.6) whose tensors are mapped, not read, so that their shapes and
    storages can be checked before any byte is copied."""
    source = str(path)
    check_input_file(path, option=field, noun=noun)
    head = _head(path)
    if not head:
        raise _problem(source, field, f"not {what}: the file is empty")
    if not zipfile.is_zipfile(path):
        if _LEGACY_MAGIC in head[:16]:
            reason = (
                "it is in torch's legacy format (before torch 1.6), which cannot be checked before it is read whole; "
                "save it again with a current torch (torch.save)"
            )
        elif _is_text(head):
            reason = "it is a text file (a spec?), not a torch file"
        else:
            reason = "it is not a torch file (torch saves a zip archive)"
        raise _problem(source, field, f"not {what}: {reason}")
    try:
        with warnings.catch_warnings():
            # torch's notes (on sparse tensors, on the unpickler) are not the user's business: what matters is
            # refused below with the tensor's name.
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not _records_hold_storages(path, payload):
            raise _problem(source, field, f"not {what}: {_SHORT_RECORD}")
        return payload
    except FileNotFoundError:
        raise _problem(source, field, f"no such {noun}") from None
    except MemoryError:
        raise _problem(source, field, f"not {what}: it asks for more memory than there is") from None
    # torch.load fails on foreign bytes with many types (UnpicklingError, KeyError, RuntimeError, EOFError, ...).
    except Exception as exc:
        raise _problem(source, field, f"not {what}: {_unreadable(exc)}") from None


_SHORT_RECORD = "a tensor's data does not have the size its header records: the file is truncated or damaged"


def _storages(value: object, found: dict[int, int], depth: int = 0) -> None:
    """The distinct storages (address -> bytes) of the tensors in `value`, a nest of dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        if value.layout == torch.strided and value.device.type == "cpu":
            storage = value.untyped_storage()
            found[storage.data_ptr()] = storage.nbytes()
    elif depth < 16 and isinstance(value, dict):
        for item in value.values():
            _storages(item, found, depth + 1)
    elif depth < 16 and isinstance(value, (list, tuple)):
        for item in value:
            _storages(item, found, depth + 1)


def _records_hold_storages(path: str | os.PathLike[str], payload: object) -> bool:
    """Whether every storage torch mapped has a record of its size in the archive: torch maps a storage from the
    record's start without comparing sizes, so a short record would give bytes from beyond it."""
    found: dict[int, int] = {}
    _storages(payload, found)
    if not found:
        return True
    with zipfile.ZipFile(path) as archive:
        records = sorted(
            item.file_size for item in archive.infolist() if "/data/" in item.filename and "/." not in item.filename
        )
    available: dict[int, int] = {}
    for size in records:
        available[size] = available.get(size, 0) + 1
    for size in found.values():
        if size and not available.get(size):
            return False
        if size:
            available[size] -= 1
    return True


def _view_problem(value: torch.Tensor) -> str | None:
    """Why `value` is not a tensor that holds its own data, or None: a view whose shape needs more elements than
    its storage has (stride 0, overlapping strides) would turn a small file into a huge copy."""
    if value.numel() == 0:
        return None
    size = value.untyped_storage().nbytes()
    extent = value.storage_offset() + sum(
        (dim - 1) * stride for dim, stride in zip(value.shape, value.stride(), strict=True)
    )
    if any(stride < 0 for stride in value.stride()) or (extent + 1) * value.element_size() > size:
        return "reaches past its storage"
    if value.numel() * value.element_size() > size:
        dims = "x".join(map(str, value.shape))
        return f"is a {dims} view of {size:,} bytes (stride 0 or overlapping): a tensor must hold its own data"
    return None


def checked_tensors(state: object, source: str, field: str = "state_dict") -> dict[str, torch.Tensor]:
    """`state` as a mapping of names to plain tensors: dense, on the CPU, real-valued; anything else is a SpecError."""
    if not isinstance(state, Mapping) or not state:
        raise _problem(source, field, "missing, empty or not a mapping of names to tensors")
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        shown = shorten(repr(key))
        if not isinstance(key, str):
            raise _problem(source, field, f"key {shown} is not a name")
        if not isinstance(value, torch.Tensor):
            raise _problem(source, field, f"key {shown} holds {type(value).__name__}, not a tensor")
        if value.layout != torch.strided:
            raise _problem(
                source,
                field,
                (
                    f"key {shown} holds a {str(value.layout).removeprefix('torch.')} tensor; archspec loads dense "
                    "tensors only"
                ),
            )
        if value.device.type == "meta":
            raise _problem(source, field, f"key {shown} holds a meta tensor (a shape without data)")
        view = _view_problem(value)
        if view is not None:
            raise _problem(source, field, f"key {shown} {view}")
        if value.is_complex() or value.is_quantized:
            raise _problem(
                source,
                field,
                (
                    f"key {shown} holds a {str(value.dtype).removeprefix('torch.')} tensor; archspec's models are "
                    "real-valued"
                ),
            )
        tensors[key] = value
    # Views that share one storage would each be copied whole: a few shared tensors (tied weights) are fine.
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors.values()}
    logical = sum(t.numel() * t.element_size() for t in tensors.values())
    if logical > 2 * sum(storages.values()) + 2**20:
        raise _problem(
            source,
            field,
            f"its tensors are views that share storage ({logical:,} bytes of tensors over "
            f"{sum(storages.values()):,} bytes of data); each tensor must hold its own data",
        )
    return tensors


def mismatch_message(
    shapes: Mapping[str, tuple[int, ...]], plan: Plan, *, skip: frozenset[str] = frozenset()
) -> str | None:
    """One line saying what does not fit the plan, or None: missing, unexpected and wrongly shaped tensors, each
    grouped by where they live (`missing 96 tensors: stage 1, block 3 (layer1.2.*), ...`) and cut short after a
    few places, so a file of another architecture still reads as one sentence."""
    from archspec.plan.tensors import state_shapes

    mismatch = compare_state(dict(shapes), plan)
    expected = [key for key in state_shapes(plan) if key not in skip]
    missing = [k for k in mismatch.missing if k not in skip]
    wrong = {k: (got, want) for k, got, want in mismatch.wrong_shape if k not in skip}
    if not (missing or mismatch.unexpected or wrong):
        return None
    top = {key.partition(".")[0] for key in expected}

    def place(key: str, planned: bool) -> str | None:
        # A key the plan lacks is placed only where the layout's words still hold (a fifth block of
        # stage 1, an extra key in the head); another library's names (stem.conv, stages.0) are not.
        where = describe_key(plan, key)
        return where if planned or where.startswith("stage ") or key.partition(".")[0] in top else None

    def shown(key: str) -> str:
        return key if re.fullmatch(r"[\w.*-]{1,80}", key, re.ASCII) else shorten(repr(key))

    def tensors(n: int) -> str:
        return f"{n} tensor{'s' if n != 1 else ''}"

    def prefixes(key: str) -> list[str]:
        parts = key.split(".")
        return [".".join(parts[:n]) + "." for n in range(1, len(parts))]

    def grouped(
        keys: list[str], universe: list[str], other: list[str], planned: bool
    ) -> list[tuple[str | None, list[str]]]:
        """(place, patterns) in order; `layer1.2.*` stands for the tensors of `universe` under `layer1.2` when there
        are several, all in `keys` and in one place, and the other side (the file, or the plan) has nothing there."""
        chosen, places = set(keys), {key: place(key, planned) for key in universe}
        shared = {prefix for key in other for prefix in prefixes(key)}
        under: dict[str, list[str]] = {}
        for key in universe:
            for prefix in prefixes(key):
                under.setdefault(prefix, []).append(key)
        whole: dict[str, bool] = {}  # prefix -> it stands for several chosen tensors, all in one place
        groups: dict[str | None, list[str]] = {}
        for key in keys:
            pattern = key
            for prefix in prefixes(key):
                if prefix not in whole:
                    group = under[prefix]
                    whole[prefix] = (
                        len(group) > 1
                        and prefix not in shared
                        and all(k in chosen and places[k] == places[key] for k in group)
                    )
                if whole[prefix]:
                    pattern = prefix + "*"
                    break
            patterns = groups.setdefault(places[key], [])
            if pattern not in patterns:
                patterns.append(pattern)
        return list(groups.items())

    def listed(items: list[str], places: bool = False) -> str:
        rest = len(items) - _LISTED
        noun = (" places" if rest > 1 else " place") if places else ""
        return ", ".join(items[:_LISTED]) + (f" and {rest} more{noun}" if rest > 0 else "")

    def described(groups: list[tuple[str | None, list[str]]]) -> str:
        items: list[str] = []
        for where, patterns in groups:
            names = [shown(p) for p in patterns]
            if where is None:
                items += names
            else:
                more = f" and {len(names) - 2} more" if len(names) > 2 else ""
                items.append(f"{where} ({', '.join(names[:2])}{more})")
        return listed(items, places=all(where is not None for where, _ in groups))

    def shape(dims: tuple[int, ...]) -> str:
        return "x".join(map(str, dims)) or "a scalar"

    parts = []
    if missing:
        everything = "all " if len(missing) == len(expected) else ""
        parts.append(
            f"missing {everything}{tensors(len(missing))}: " + described(grouped(missing, expected, list(shapes), True))
        )
    if mismatch.unexpected:
        parts.append(
            f"unexpected {tensors(len(mismatch.unexpected))}: "
            + described(grouped(mismatch.unexpected, list(shapes), expected, False))
        )
    if wrong:
        by_place: dict[str, list[str]] = {}
        for key in wrong:
            by_place.setdefault(describe_key(plan, key), []).append(key)
        items = []
        for where, keys in by_place.items():
            got, want = wrong[keys[0]]
            more = f", and {len(keys) - 1} more" if len(keys) > 1 else ""
            items.append(f"{where} ({shown(keys[0])} is {shape(got)} in the file, {shape(want)} in the spec{more})")
        parts.append(f"wrong shape in {tensors(len(wrong))}: " + listed(items, places=True))
    return f"does not fit {plan.spec.name}: " + "; ".join(parts)


def check_values(state: Mapping[str, torch.Tensor], source: str, field: str = "state_dict") -> None:
    """Refuse what torch would load silently but wrongly: an integer or boolean tensor where a weight is (torch
    casts it to float), a floating-point batch-norm counter, and weights that are NaN or infinite."""
    for key, value in state.items():
        dtype = str(value.dtype).removeprefix("torch.")
        if key.endswith(".num_batches_tracked"):
            if value.is_floating_point() or value.dtype == torch.bool:
                raise _problem(source, field, f"key {shorten(key)} holds {dtype} values; a batch count is an integer")
        elif not value.is_floating_point():
            raise _problem(
                source, field, f"key {shorten(key)} holds {dtype} values; weights are floating-point numbers"
            )
    bad = [key for key, value in state.items() if value.is_floating_point() and not bool(value.isfinite().all())]
    if bad:
        names = ", ".join(shorten(key) for key in bad[:_LISTED]) + (
            f" and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        )
        raise _problem(
            source,
            field,
            f"{len(bad)} tensor{'s' if len(bad) > 1 else ''} hold NaN or infinite values ({names}): the weights of a "
            "diverged run, or a damaged file",
        )


def read_checkpoint(
    path: str | os.PathLike[str], field: str = "checkpoint"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(embedded spec as data, checked tensors) of an archspec checkpoint; the checksum is verified."""
    source = str(path)
    payload = torch_file(path, field=field)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _problem(
            source,
            field,
            (
                "not an archspec checkpoint: a torch file, but not one written by `archspec build --out` or `archspec "
                "train`"
            ),
        )
    version = payload.get("version")
    if version not in (1, VERSION):
        raise _problem(
            source, "version", f"checkpoint version {shorten(repr(version))} is not supported (expected 1 or {VERSION})"
        )
    spec = payload.get("spec")
    if not isinstance(spec, dict):
        raise _problem(source, "spec", "missing or not a mapping")
    state = checked_tensors(payload.get("state_dict"), source)
    if version == VERSION and payload.get("sha256") != state_digest(state):
        raise _problem(
            source, "sha256", "the weights do not match the checksum stored with them: the file is corrupted"
        )
    return spec, state


def checkpoint_plan(spec: dict[str, Any], source: str) -> Plan:
    """The plan of a checkpoint's embedded spec, validated like any other spec."""
    from archspec.lang.yamldoc import from_mapping
    from archspec.plan.load import plan_document

    return plan_document(from_mapping(spec, source=f"{source} (embedded spec)"))


def load_checkpoint(
    path: str | os.PathLike[str], *, device: str | torch.device = "auto", force: bool = False
) -> nn.Module:
    """Rebuild the model saved in `path`: check everything in the file against its own plan, then build and load."""
    from archspec.nn.builder import build_from_plan, resolve_device
    from archspec.nn.guard import check_fits

    source = str(path)
    spec, state = read_checkpoint(path)
    plan = checkpoint_plan(spec, source)
    message = mismatch_message({k: tuple(v.shape) for k, v in state.items()}, plan)
    if message is not None:
        raise _problem(source, "state_dict", message)
    check_values(state, source)
    target = resolve_device(device)
    check_fits(plan, target, mode="weights", force=force, source=source)
    model = build_from_plan(plan, target)
    model.load_state_dict(state, strict=True)
    return model
