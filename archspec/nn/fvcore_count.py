"""The reference counter: build the module and run fvcore's FlopCountAnalysis on it."""

from __future__ import annotations

import logging
import warnings

from archspec.counting.analytic import Complexity, count_ops
from archspec.plan.ops import Plan


def fvcore_complexity(plan: Plan) -> Complexity:
    """fvcore's counts for one image in eval mode on the CPU, in the same shape as the analytic counter's."""
    import torch

    with warnings.catch_warnings():
        # Importing fvcore touches torch.jit.script, which torch now warns about on every import.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    from archspec.nn.builder import build_from_plan

    model = build_from_plan(plan, "cpu").eval()
    x = torch.zeros(1, plan.input_channels, *plan.input_size)
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
            acts = ActivationCountAnalysis(model, x)
            acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            activations = int(acts.total())
    finally:
        logger.setLevel(previous)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(
        name=plan.spec.name,
        input_size=plan.input_size,
        # fvcore does not count layers; depth is a property of the plan.
        layers=count_ops(plan.children).layers,
        params=params,
        flops=sum(by_op.values()),
        flops_by_op=by_op,
        macs=by_op.get("conv", 0) + by_op.get("linear", 0),
        activations=activations,
        params_by_section={},
        flops_by_section={},
    )
