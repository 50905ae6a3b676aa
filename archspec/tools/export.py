"""`archspec export`: a built model as ONNX, TorchScript or a torch.export program, checked before it is written.

Every format is serialised in memory, loaded back with its own runtime (onnxruntime,
`torch.jit.load`, `torch.export.load`) and run on a fresh input; only when its
outputs match PyTorch's is the file written (atomically). The batch axis is
dynamic unless a fixed batch size is asked for; the spatial size is the plan's.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from archspec.errors import Mark, Problem, SpecError
from archspec.report.results import ExportResult

if TYPE_CHECKING:
    import torch
    from torch import nn

    from archspec.plan import Plan

FORMATS = ("onnx", "torchscript", "exported-program")
# The example batch the graph is traced with; torch.export specialises a size of 1, so a
# dynamic batch axis needs another example.
_EXAMPLE_BATCH = 2
# A dynamic export is checked at a batch size it was not traced with.
_CHECK_BATCH = 3
# Outputs may differ by float32 rounding only: |exported - pytorch| <= ATOL + RTOL * |pytorch|.
ATOL = 1e-4
RTOL = 1e-4
# ONNX files are single protobufs, which cannot exceed 2 GiB.
_ONNX_LIMIT = 2**31


def check_onnx_size(weight_bytes: int) -> None:
    """One ONNX file is one protobuf, which cannot exceed 2 GiB."""
    if weight_bytes >= _ONNX_LIMIT:
        raise SpecError(
            Problem(
                Mark("--format onnx"),
                "--format",
                f"the weights take {weight_bytes / 2**30:.2f} GiB; one ONNX file holds at most 2 GiB",
            )
        )


def output_names(plan: Plan) -> list[str]:
    """`logits`, or `features.N` for each stage a features-only spec returns."""
    if plan.taps is None:
        return ["logits"]
    features = plan.spec.head.features
    assert features is not None  # the plan taps stages only for a features-only head
    return [f"features.{index}" for index in features]


@contextlib.contextmanager
def _torchscript_deprecation_silenced() -> Iterator[None]:
    """torch 2.x deprecates TorchScript with a FutureWarning per call; the user asked for it by name."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\..* is deprecated")
        yield


def serialize(model: nn.Module, example: torch.Tensor, fmt: str, dynamic: bool, names: list[str]) -> bytes:
    """The exported model as the bytes of its file."""
    import torch

    model.eval()
    if fmt == "torchscript":
        # Tracing, not scripting: ResidualBlock.forward looks modules up by name, which
        # TorchScript's compiler cannot type. A traced graph does not fix the batch size.
        with torch.no_grad(), _torchscript_deprecation_silenced():
            # torch.jit.trace is unannotated.
            traced = torch.jit.trace(model, (example,))  # type: ignore[no-untyped-call]
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
        return buffer.getvalue()
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
    if fmt == "exported-program":
        program = torch.export.export(model, (example,), dynamic_shapes=shapes)
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()
    if fmt == "onnx":
        check_onnx_size(sum(p.numel() * p.element_size() for p in model.parameters()))
        # The dynamo-based exporter (torch.export, then onnxscript); the older TorchScript-based
        # one is deprecated in torch 2.x.
        onnx_program = torch.onnx.export(
            model,
            (example,),
            None,
            dynamo=True,
            verbose=False,
            input_names=["input"],
            output_names=names,
            dynamic_shapes=shapes,
            external_data=False,
        )
        assert onnx_program is not None  # the dynamo exporter always returns its program
        proto: bytes = onnx_program.model_proto.SerializeToString()
        return proto
    raise SpecError(Problem(Mark(f"--format {fmt}"), "--format", f"unknown format; use one of {', '.join(FORMATS)}"))


def run_serialized(data: bytes, fmt: str, x: torch.Tensor) -> list[torch.Tensor]:
    """Load exported bytes with the format's own runtime and run them on `x`; the outputs as CPU tensors."""
    import torch

    if fmt == "onnx":
        import onnx
        import onnxruntime

        onnx.checker.check_model(onnx.load_model_from_string(data), full_check=True)
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        return [torch.from_numpy(y) for y in session.run(None, {session.get_inputs()[0].name: x.numpy()})]
    if fmt == "torchscript":
        with _torchscript_deprecation_silenced():
            # torch.jit.load is unannotated.
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    else:
        loaded = torch.export.load(io.BytesIO(data)).module()
    with torch.no_grad():
        return as_list(loaded(x))


def as_list(y: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (list, tuple)) else [y]


def compare(exported: list[torch.Tensor], reference: list[torch.Tensor]) -> tuple[float, float, bool]:
    """(max |difference|, max |reference|, within ATOL + RTOL * |reference| everywhere)."""
    import torch

    if len(exported) != len(reference):
        return float("inf"), 0.0, False
    worst, largest, close = 0.0, 0.0, True
    for got, want in zip(exported, reference, strict=True):
        got, want = got.float(), want.float()
        if got.shape != want.shape:
            return float("inf"), 0.0, False
        worst = max(worst, (got - want).abs().max().item())
        largest = max(largest, want.abs().max().item())
        close = close and torch.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
    return worst, largest, close


def export_model(
    model: nn.Module,
    plan: Plan,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    batch: int | None = None,
    force: bool = False,
    check: bool = True,
    progress: Callable[[str], object] | None = None,
) -> ExportResult:
    """Export `model` (built from `plan`, on the CPU) to `out` in `fmt`; check the result first (unless not
    `check`), then write it."""
    import torch

    from archspec.files import atomic_write, check_output
    from archspec.tools.interrupt import stop_if_interrupted

    say = progress or (lambda text: None)
    check_output(out, force=force)  # before the export, which takes a while, rather than after
    names = output_names(plan)
    shape = [plan.input_channels, *plan.input_size]
    model = model.to("cpu").eval()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(batch or _EXAMPLE_BATCH, *shape, generator=generator)
    say(
        f"archspec: exporting {plan.spec.name} as {fmt} (batch {'dynamic' if batch is None else batch}, input "
        f"{'x'.join(map(str, shape))}) ..."
    )
    data = serialize(model, example, fmt, batch is None, names)
    checked, worst, largest = 0, None, None
    if check:
        checked = batch or _CHECK_BATCH
        x = torch.randn(checked, *shape, generator=generator)
        say(f"archspec: checking the exported model against PyTorch at batch {checked} ...")
        with torch.no_grad():
            reference = as_list(model(x))
        worst, largest, close = compare(run_serialized(data, fmt, x), reference)
        if not close:
            raise SpecError(
                Problem(
                    Mark(str(out)),
                    "--format",
                    f"the exported {fmt} model's outputs differ from PyTorch's by up to {worst:.3g} (outputs up to "
                    f"{largest:.3g}; "
                    f"tolerance {ATOL:g} + {RTOL:g} x |output|); nothing was written (--no-check writes it unchecked)",
                )
            )
    stop_if_interrupted()  # a Ctrl-C that torch's exporter turned into its own error, or swallowed
    atomic_write(out, lambda handle: handle.write(data), force=force)
    return ExportResult(
        path=str(out),
        format=fmt,
        batch=batch,
        input_shape=["batch" if batch is None else batch, *shape],
        output_names=names,
        bytes=len(data),
        checked_batch=checked,
        max_abs_difference=worst,
        max_abs_output=largest,
        seconds=round(time.perf_counter() - started, 2),
    )
