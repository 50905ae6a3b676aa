"""Published weights into an archspec model: torchvision or timm state_dicts (`.pth`, `.safetensors`) or
archspec checkpoints, checked key by key and shape by shape against the spec's plan before anything is built.

A file whose only difference is the classifier's number of classes loads everything else and
leaves the head freshly initialised (fine-tuning from ImageNet weights); anything else that
does not fit is one located message naming each key's stage and block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.files import check_input_file
from archspec.nn.builder import build_from_plan
from archspec.nn.checkpoint import (
    FORMAT,
    check_values,
    checked_tensors,
    mismatch_message,
    read_checkpoint,
    torch_file,
)
from archspec.nn.guard import check_fits
from archspec.plan.ops import Plan
from archspec.plan.tensors import compare_state, head_keys, state_shapes

# Wrappers that training scripts put around a state_dict, and the prefix DataParallel adds to every key.
_NESTED = ("state_dict", "model", "model_state_dict", "module")
_PARALLEL_PREFIX = "module."


@dataclass(frozen=True)
class LoadedWeights:
    """What was loaded: the file, what kind of file it was, how many tensors, and whether the head was reset."""

    path: str
    kind: str
    tensors: int
    head_reset: str | None  # why the classifier was left freshly initialised, or None

    def __str__(self) -> str:
        text = f"loaded {self.tensors} tensors from {self.path} ({self.kind})"
        return text + (f"; {self.head_reset}" if self.head_reset else "")


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """(tensors, kind) of a weights file: safetensors, an archspec checkpoint, or a (wrapped) torch state_dict."""
    source = str(path)
    check_input_file(path, option="--weights", noun="weights file")
    if Path(path).suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise SpecError(
                Problem(
                    Mark(source),
                    "--weights",
                    "reading .safetensors needs the safetensors package: pip install safetensors",
                )
            ) from None
        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for foreign bytes
            raise SpecError(
                Problem(Mark(source), "--weights", f"not a safetensors file ({shorten(str(exc))})")
            ) from None
        return checked_tensors(state, source, "--weights"), "safetensors"
    payload = torch_file(path, "weights file", "a weights file", "--weights")
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return read_checkpoint(path, "--weights")[1], "archspec checkpoint"
    kind = "state_dict"
    # A training checkpoint keeps its weights under one of these keys, beside the epoch, the optimiser and
    # perhaps a tensor or two (pytorch/examples' `best_acc1`); a state_dict's own keys are dotted names.
    while isinstance(payload, dict):
        nested = next((key for key in _NESTED if isinstance(payload.get(key), dict)), None)
        if nested is None:
            break
        payload, kind = payload[nested], f"state_dict under `{nested}`"
    state = checked_tensors(payload, source, "--weights")
    if all(key.startswith(_PARALLEL_PREFIX) for key in state):
        state = {key[len(_PARALLEL_PREFIX) :]: value for key, value in state.items()}
        kind += ", `module.` prefix removed"
    return state, kind


def _layout_hint(keys: list[str], plan: Plan) -> str:
    """A hint when the file looks like another layout of the same family: another library's names, the other
    kind of ResNet stem, or a whole classifier for a features-only spec. (The paper's stride placement and
    v1.5's have the same shapes: nothing can tell them apart.)"""
    planned = state_shapes(plan)
    if plan.taps is not None and any(k.partition(".")[0] in ("fc", "classifier") and k not in planned for k in keys):
        return "; the spec is features-only (head.features) and ends at its last stage: it has no classifier to load"
    if plan.family == "regnet" and any(k.startswith(("s1.", "stem.conv.")) for k in keys):
        return "; the file uses timm's RegNet names (s1.b1...); archspec's RegNets take torchvision's (trunk_output...)"
    if plan.family == "vgg" and any(k.startswith(("pre_logits.", "head.fc.")) for k in keys):
        return "; the file uses timm's VGG names (pre_logits, head.fc); archspec's VGGs take torchvision's (classifier)"
    if plan.family != "resnet":
        return ""
    if any(k.startswith(("stages.", "stem.")) for k in keys):
        return (
            "; the file uses timm's ResNetV2 names (stem.conv, stages.0.blocks.0...); "
            "archspec's ResNets take the names of torchvision's and timm's ResNets (conv1, layer1.0...)"
        )
    if "conv1.weight" in keys and "conv1.0.weight" in planned:
        return "; the file's stem is one conv (conv1.weight), the spec's a ResNet-D's deep stem (conv1.0, conv1.3...)"
    if "conv1.0.weight" in keys and "conv1.weight" in planned:
        return "; the file's stem is a ResNet-D's deep stem (conv1.0, conv1.3...), the spec's one conv: try the -d spec"
    return ""


def _input_hint(path: str | os.PathLike[str], kind: str, shapes: dict[str, tuple[int, ...]], plan: Plan) -> str | None:
    """The `--set input...` that would make the file fit, when its input differs from the spec's: an archspec
    checkpoint names its input (a model trained on digits takes 1x8x8), a state_dict's first conv its channels."""
    wanted: list[str] = []
    if kind == "archspec checkpoint":
        embedded = read_checkpoint(path, "--weights")[0].get("input")
        if isinstance(embedded, dict):
            channels, size = embedded.get("channels"), embedded.get("size")
            if isinstance(channels, int) and channels != plan.input_channels:
                wanted.append(f"--set input.channels={channels}")
            size = [size, size] if isinstance(size, int) else size
            if isinstance(size, list) and len(size) == 2 and tuple(size) != tuple(plan.input_size):
                shown = str(size[0]) if size[0] == size[1] else f"[{size[0]},{size[1]}]"
                wanted.append(f"--set input.size={shown}")
    else:
        planned = state_shapes(plan)
        first = next((key for key, dims in planned.items() if len(dims) == 4), None)
        if first is not None and len(shapes.get(first, ())) == 4 and shapes[first][1] != planned[first][1]:
            wanted.append(f"--set input.channels={shapes[first][1]}")
    if not wanted:
        return None
    return f"; the file's model takes another input: add {' '.join(wanted)}"


def _absent_counters(state: dict[str, torch.Tensor], plan: Plan) -> frozenset[str]:
    """The batch norms' `num_batches_tracked` of a file that has none (older torchvision files and stripped
    exports): a step counter, not a weight, which torch itself fills in when it loads such files. A file
    with some counters but not others is missing whole norms, and says so."""
    if any(key.endswith(".num_batches_tracked") for key in state):
        return frozenset()
    return frozenset(k for k in state_shapes(plan) if k.endswith(".num_batches_tracked"))


def _other_classes(pairs: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> bool:
    """Whether the file's head tensors (theirs, ours) are ours for another number of classes: each of the same
    rank, differing at most in its first dimension, one class count (at least 1) for all of them."""
    if not pairs or not all(len(theirs) == len(ours) >= 1 and theirs[1:] == ours[1:] for theirs, ours in pairs):
        return False
    counts = {theirs[0] for theirs, _ in pairs}
    return len(counts) == 1 and min(counts) >= 1


def load_weights(
    plan: Plan, path: str | os.PathLike[str], *, device: torch.device | str = "cpu", force: bool = False
) -> tuple[nn.Module, LoadedWeights]:
    """Check a weights file against `plan`, then build the model and load the file into it: strict, but for a
    classifier with another number of classes, which is left freshly initialised."""
    source = str(path)
    state, kind = read_weights(path)
    counters = _absent_counters(state, plan)
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    head = head_keys(plan)
    mismatch = compare_state(shapes, plan)
    ours_shapes = state_shapes(plan)
    fits_but_head = (
        bool(head)
        and set(mismatch.missing) <= counters
        and not mismatch.unexpected
        and {key for key, _, _ in mismatch.wrong_shape} <= set(head)
        and _other_classes([(shapes[key], ours_shapes[key]) for key in head if key in shapes])
    )
    head_reset = None
    if mismatch.wrong_shape and fits_but_head:
        module, (theirs, ours) = head[0].rsplit(".", 1)[0], (shapes[head[0]][0], ours_shapes[head[0]][0])
        head_reset = f"the head ({module}) is left freshly initialised: the file has {theirs} classes, the spec {ours}"
        state = {key: value for key, value in state.items() if key not in head}
    else:
        message = mismatch_message(shapes, plan, skip=counters)
        if message is not None:
            hint = _input_hint(path, kind, shapes, plan) or _layout_hint(list(state), plan)
            raise SpecError(Problem(Mark(source), "--weights", message + hint))
    check_values(state, source, "--weights")
    check_fits(plan, device, mode="weights", force=force, source=source)
    model = build_from_plan(plan, device)
    if counters:  # they keep the fresh model's zeros
        fresh = model.state_dict()
        state = state | {key: fresh[key] for key in counters}
        kind += f", num_batches_tracked absent ({len(counters)} set to 0)"
    model.load_state_dict(state, strict=head_reset is None)
    return model, LoadedWeights(source, kind, len(state) - len(counters), head_reset)
