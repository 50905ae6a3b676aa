"""References to other libraries' models: `torchvision:NAME` and `timm:NAME`, and the stock specs those libraries
ship under the same name."""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import Mark, Problem, SpecError, shorten

LIBRARIES = ("torchvision", "timm")

# Stock specs that are, op for op, a model the library ships under the same name (each pinned by a
# parity test: torchvision's or timm's weights load strictly and the outputs are equal).
TORCHVISION = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf",
    "regnet_x_32gf", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf",
    "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf",
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
    "mobilenet_v2", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
)  # fmt: skip
# timm's VGGs run the classifier as a 7x7 conv without torchvision's adaptive pool, so they are not
# the same network at other input sizes, and timm's RegNets use other module names; both are left out.
TIMM = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnet18d", "resnet26d", "resnet50d", "seresnet50",
    "resnext50_32x4d", "resnext50d_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
)  # fmt: skip
PEERS = {"torchvision": TORCHVISION, "timm": TIMM}


@dataclass(frozen=True)
class ModelRef:
    """`torchvision:resnet50` or `timm:resnet50d`: a model of another library, by name."""

    library: str
    name: str

    def __str__(self) -> str:
        return f"{self.library}:{self.name}"


def parse_model_ref(text: str, option: str = "") -> ModelRef | None:
    """A ModelRef for `LIBRARY:NAME`, None for anything else (a spec); an unknown library is a SpecError."""
    library, sep, name = text.partition(":")
    if not sep or "/" in library or library.endswith((".yaml", ".yml")):
        return None
    if library not in LIBRARIES:
        raise SpecError(
            Problem(
                Mark(shorten(f"{option} {text}".strip())),
                option.lstrip("-") or "model",
                f"unknown library {library!r}; use torchvision:NAME or timm:NAME",
            )
        )
    if not name:
        raise SpecError(
            Problem(
                Mark(shorten(f"{option} {text}".strip())),
                option.lstrip("-") or "model",
                f"give a model name after `{library}:`",
            )
        )
    return ModelRef(library, name)
