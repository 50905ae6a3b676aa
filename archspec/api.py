"""The public functions: spec in, plan, counts or module out.

After the one positional argument (the spec: a path, a stock name or a mapping), every
parameter is keyword-only, with the same names in the same order everywhere.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from archspec.counting.analytic import Complexity, complexity
from archspec.errors import Mark, Problem, SpecError
from archspec.lang.schema import Spec
from archspec.lang.sources import load_document, stock_names
from archspec.plan.load import InputSize, Source, check_arguments, load_plan, plan_document
from archspec.plan.ops import Plan

if TYPE_CHECKING:
    from torch import nn


def _check_path(value: object, argument: str, optional: bool = False) -> None:
    if (optional and value is None) or isinstance(value, (str, os.PathLike)):
        return
    raise TypeError(f"{argument} must be a path (str or os.PathLike), not {type(value).__name__}")


def load_spec(source: Source, *, overrides: Sequence[str] = ()) -> Spec:
    """The validated spec (every field and every rule checked; generators as written)."""
    check_arguments(overrides)
    return plan_document(load_document(source, overrides)).spec


def count(source: Source, *, overrides: Sequence[str] = (), input_size: InputSize | None = None) -> Complexity:
    """Analytic parameters, FLOPs (fvcore's convention), MACs, activations and depth; torch is not imported."""
    return complexity(load_plan(source, overrides=overrides, input_size=input_size))


def build(
    source: Source,
    *,
    overrides: Sequence[str] = (),
    input_size: InputSize | None = None,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> nn.Module:
    """An `nn.Module` for the spec on `device` ("auto": CUDA when there is one), freshly initialised, or with
    `weights` (a torchvision or timm state_dict, `.pth` or `.safetensors`, or an archspec checkpoint) checked
    against the spec's plan and loaded strictly (a classifier with another number of classes stays fresh).

    The memory guard refuses a model whose parameters would not fit in the device's free memory (`force`
    skips it). `device="meta"` gives the module's structure only: every tensor has its shape and no
    storage, nothing is initialised, and no weights can be loaded into it."""
    from archspec.nn.builder import build_from_plan, resolve_device
    from archspec.nn.guard import check_fits

    _check_path(weights, "weights", optional=True)
    plan = load_plan(source, overrides=overrides, input_size=input_size)
    if device == "meta":
        if weights is not None:
            message = "a meta model has no storage to load weights into; build on cpu or cuda"
            raise SpecError(Problem(Mark(str(weights)), "device", message))
        return build_from_plan(plan, "meta")
    target = resolve_device(device)
    if weights is None:
        check_fits(plan, target, mode="weights", force=force)
        return build_from_plan(plan, target)
    from archspec.nn.weights import load_weights

    model, _ = load_weights(plan, weights, device=target, force=force)
    return model


def load_checkpoint(path: str | os.PathLike[str], *, device: str = "auto", force: bool = False) -> nn.Module:
    """Rebuild the model saved by `archspec build --out` or `archspec train` (spec and weights), after the
    memory guard has checked that it fits the device (`force=True` skips that check)."""
    from archspec.nn.checkpoint import load_checkpoint as load

    _check_path(path, "path")
    return load(path, device=device, force=force)


def list_specs(pattern: str | None = None) -> list[str]:
    """Names of the stock specs, sorted; `pattern` filters them with shell wildcards (`resnet*`)."""
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError(
            f"pattern must be a str (shell wildcards, such as 'resnet*') or None, not {type(pattern).__name__}"
        )
    names = stock_names()
    return names if pattern is None else [name for name in names if fnmatch.fnmatchcase(name, pattern)]


__all__ = [
    "Complexity",
    "InputSize",
    "Plan",
    "Source",
    "Spec",
    "build",
    "count",
    "list_specs",
    "load_checkpoint",
    "load_plan",
    "load_spec",
]
