"""Device and precision choices, checked once for every command that runs a model (build, bench, train, export)."""

from __future__ import annotations

import sys

import torch

from archspec.errors import Mark, Problem, SpecError

AMP = ("bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `--amp`, or None; a choice the device cannot run is a SpecError."""
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise SpecError(Problem(Mark(f"--amp {amp}"), "amp", "use bf16 or fp16"))
    if amp == "fp16" and device.type != "cuda":
        raise SpecError(Problem(Mark("--amp fp16"), "amp", "float16 autocast needs CUDA; on the CPU use --amp bf16"))
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SpecError(
            Problem(
                Mark("--amp bf16"),
                "amp",
                f"{torch.cuda.get_device_name(device)} does not support bfloat16; use --amp fp16",
            )
        )
    return AMP_DTYPES[amp]


def check_compile() -> None:
    """torch.compile must be usable with this Python and torch."""
    import torch._dynamo

    # torch._dynamo imports this name without listing it in __all__.
    if not torch._dynamo.is_dynamo_supported():  # type: ignore[attr-defined]
        raise SpecError(
            Problem(
                Mark("--compile"),
                "compile",
                (
                    f"torch.compile is not available with this Python ({sys.version.split()[0]}) and torch "
                    f"({torch.__version__})"
                ),
            )
        )
