"""The reference counter: build the module and run fvcore's FlopCountAnalysis on it."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from archspec.counting.analytic import Complexity, count_ops
from archspec.nn.builder import build_from_plan
from archspec.nn.guard import check_fits
from archspec.plan.ops import Plan


@dataclass(frozen=True)
class FvcoreCounts:
    flops_by_op: dict[str, int]
    by_module: dict[str, int]
    activations: int
    activations_by_module: dict[str, int]
    params: int

    @property
    def flops(self) -> int:
        return sum(self.flops_by_op.values())

    @property
    def macs(self) -> int:
        return self.flops_by_op.get("conv", 0) + self.flops_by_op.get("linear", 0)


def fvcore_counts(model: nn.Module, x: torch.Tensor) -> FvcoreCounts:
    """fvcore's flops (by operator and by module) and activations of `model` on `x`, in eval mode."""
    with warnings.catch_warnings():
        # Importing fvcore touches torch.jit.script, which torch now warns about on every import.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = model.eval()
    # fvcore logs a warning for every op it does not count (relu, add, max pool); those are
    # part of its convention, not news to the user.
    logger = logging.getLogger("fvcore")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            flops = FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = {k: int(v) for k, v in sorted(flops.by_operator().items()) if v}
            by_module = {k: int(v) for k, v in flops.by_module().items()}
            acts = ActivationCountAnalysis(model, x)
            acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            activations = int(acts.total())
            activations_by_module = {k: int(v) for k, v in acts.by_module().items()}
    finally:
        logger.setLevel(previous)
    params = sum(p.numel() for p in model.parameters())
    return FvcoreCounts(by_op, by_module, activations, activations_by_module, params)


def zeros_model(plan: Plan) -> nn.Module:
    """The plan's module on the CPU with every parameter and buffer zero, for counting: the counts do not
    depend on the values, and skipping the initialisers halves the time on the larger specs."""
    model = build_from_plan(plan, "meta").to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    return model


def fvcore_complexity(plan: Plan, *, force: bool = False) -> Complexity:
    """fvcore's counts for one image in eval mode on the CPU, in the same shape as the analytic counter's."""
    check_fits(plan, "cpu", 1, force=force)
    model = zeros_model(plan)
    counts = fvcore_counts(model, torch.zeros(1, plan.input_channels, *plan.input_size))
    return Complexity(
        name=plan.spec.name,
        input_size=plan.input_size,
        # fvcore does not count layers; depth is a property of the plan.
        layers=count_ops(plan.children).layers,
        params=counts.params,
        flops=counts.flops,
        flops_by_op=counts.flops_by_op,
        macs=counts.macs,
        activations=counts.activations,
        params_by_section={},
        flops_by_section={},
    )
