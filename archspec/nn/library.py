"""torchvision and timm models by name: listing them, building them, counting them with fvcore."""

from __future__ import annotations

import difflib
import importlib.util
from typing import cast

import torch
from torch import nn

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.lang.refs import ModelRef

_INSTALL = {"torchvision": "pip install torchvision", "timm": "pip install timm"}


def _require(library: str, ref: str) -> None:
    if importlib.util.find_spec(library) is None:
        raise SpecError(
            Problem(Mark(ref), "model", f"{library} is not installed; install it with: {_INSTALL[library]}")
        )


def library_names(library: str) -> list[str]:
    """Every model name the library can build."""
    if library == "torchvision":
        import torchvision

        return sorted(torchvision.models.list_models())
    import timm

    return sorted(timm.list_models())


def _known(ref: ModelRef, names: list[str]) -> bool:
    if ref.library == "timm":
        import timm

        return bool(timm.is_model(ref.name))  # also takes timm's pretrained tags: resnet50.a1_in1k
    return ref.name in names


def check_known(ref: ModelRef, option: str = "") -> None:
    """An unknown name is a SpecError that suggests the library's closest names (or says how to list them)."""
    shown = shorten(f"{option} {ref}".strip())
    _require(ref.library, shown)
    names = library_names(ref.library)
    if _known(ref, names):
        if ref.library == "timm":
            _check_tag(ref, shown, option)
        return
    close = difflib.get_close_matches(ref.name, names, n=3, cutoff=0.6)
    if close:
        hint = "; did you mean " + ", ".join(f"`{ref.library}:{n}`" for n in close) + "?"
    else:
        lister = "torchvision.models.list_models()" if ref.library == "torchvision" else "timm.list_models()"
        hint = f"; {lister} lists its {len(names)} models"
    message = f"{ref.library} has no model named {shorten(repr(ref.name))}{hint}"
    raise SpecError(Problem(Mark(shown), option.lstrip("-") or "model", message))


def _check_tag(ref: ModelRef, shown: str, option: str) -> None:
    """timm accepts `name.tag` for any tag and fails only when it builds: a tag it does not know is refused here."""
    import timm

    arch, dot, tag = ref.name.partition(".")
    if not dot or ref.name in timm.list_pretrained(f"{arch}.*"):
        return
    tags = [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*")]
    known = f"its tags are {', '.join(tags[:5])}" + (f" and {len(tags) - 5} more" if len(tags) > 5 else "")
    message = f"timm's {shorten(arch)} has no pretrained tag {shorten(repr(tag))}; " + (
        known if tags else "it has no pretrained tags; give the name alone"
    )
    raise SpecError(Problem(Mark(shown), option.lstrip("-") or "model", message))


def _no_download_arguments(name: str) -> dict[str, None]:
    """torchvision's detection and segmentation builders fetch an ImageNet backbone unless told not to
    (`weights_backbone`); archspec builds fresh models and never downloads."""
    import inspect

    import torchvision

    parameters = inspect.signature(torchvision.models.get_model_builder(name)).parameters
    return {key: None for key in parameters if key.startswith("weights") and key != "weights"}


def _make(ref: ModelRef) -> nn.Module:
    if ref.library == "torchvision":
        import torchvision

        extra = _no_download_arguments(ref.name)
        return cast(nn.Module, torchvision.models.get_model(ref.name, weights=None, **extra))
    import timm

    model: nn.Module = timm.create_model(ref.name, pretrained=False)
    return model


def build_library_model(ref: ModelRef, device: torch.device | str = "cpu", *, force: bool = False) -> nn.Module:
    """A freshly initialised model from torchvision or timm (no weights are downloaded), built only once a
    shape-only copy has shown that its weights fit the device's free memory."""
    from archspec.nn.guard import available_bytes, gib

    check_known(ref)
    try:
        with torch.device("meta"):
            shapes = _make(ref)
    except (NotImplementedError, RuntimeError):
        # A few constructors read tensor values (torchvision's RegNets compute their widths with torch):
        # those cannot be built shape-only, and are small enough to build for real.
        shapes = None
    if shapes is not None and torch.device(device).type == "meta":
        return shapes
    params = sum(p.numel() for p in shapes.parameters()) if shapes is not None else 0
    free = available_bytes(device)
    if not force and free is not None and params * 4 > free:
        where = torch.device(device).type
        message = f"needs about {gib(params * 4)} for its weights but the {where} has {gib(free)} free; pass --force"
        raise SpecError(Problem(Mark(str(ref)), "model", message))
    with torch.device(device):
        return _make(ref)
