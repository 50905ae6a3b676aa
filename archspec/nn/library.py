"""torchvision and timm models by name: listing them, building them, counting them with fvcore."""

from __future__ import annotations

import difflib
import importlib.util

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.lang.refs import ModelRef

_INSTALL = {"torchvision": "pip install torchvision", "timm": "pip install timm"}


def _require(library: str, ref: str) -> None:
    if importlib.util.find_spec(library) is None:
        raise SpecError(Problem(Mark(ref), "model", f"{library} is not installed; install it with: {_INSTALL[library]}"))


def library_names(library: str) -> list[str]:
    """Every model name the library can build."""
    if library == "torchvision":
        import torchvision

        return sorted(torchvision.models.list_models())
    import timm

    return sorted(timm.list_models())


def check_known(ref: ModelRef, option: str = "") -> None:
    """An unknown name is a SpecError that suggests the library's closest names."""
    shown = shorten(f"{option} {ref}".strip())
    _require(ref.library, shown)
    names = library_names(ref.library)
    if ref.name in names:
        return
    close = difflib.get_close_matches(ref.name, names, n=3, cutoff=0.6)
    hint = ("; did you mean " + ", ".join(f"`{ref.library}:{n}`" for n in close) + "?") if close else ""
    raise SpecError(Problem(Mark(shown), option.lstrip("-") or "model", f"{ref.library} has no model named {shorten(repr(ref.name))}{hint}"))


def _make(ref: ModelRef) -> nn.Module:
    if ref.library == "torchvision":
        import torchvision

        return torchvision.models.get_model(ref.name, weights=None)
    import timm

    return timm.create_model(ref.name, pretrained=False)


def build_library_model(ref: ModelRef, device: torch.device | str = "cpu", *, force: bool = False) -> nn.Module:
    """A freshly initialised model from torchvision or timm (no weights are downloaded), built only once a
    shape-only copy has shown that its weights fit the device's free memory."""
    from archspec.nn.guard import available_bytes, gib

    check_known(ref)
    with torch.device("meta"):
        params = sum(p.numel() for p in _make(ref).parameters())
    free = available_bytes(device)
    if not force and free is not None and params * 4 > free:
        raise SpecError(Problem(Mark(str(ref)), "model", f"needs about {gib(params * 4)} for its weights but the {torch.device(device).type} has {gib(free)} free; pass --force"))
    with torch.device(device):
        return _make(ref)
