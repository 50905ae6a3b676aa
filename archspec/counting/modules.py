"""Counts per module of the built model's hierarchy, read off the plan (fvcore's `by_module`, without torch).

Every module the builder makes has a row, named as `model.named_modules()` names it
(`layer3.4.conv2`; "" is the whole model), in the same order, with the parameters, FLOPs,
MACs and activations of the module and everything inside it.
"""

from __future__ import annotations

from archspec.counting.analytic import Counts, count_op
from archspec.plan import ops as p
from archspec.plan.records import record
from archspec.report.results import ModuleRow


def _walk(name: str, op: p.Op, main_path: bool, rows: list[ModuleRow]) -> Counts:
    index = len(rows)
    rows.append(ModuleRow(name, name.count(".") + 1, 0, 0, 0, 0))
    children = p.children(op)
    if not children:
        total = count_op(op, main_path)
    else:
        total = Counts()
        side = record(op).side_path(op)
        for child_name, child in children:
            if record(child).own_parameter:  # a parameter of this module, not a module of its own
                total.add(count_op(child, main_path))
                continue
            total.add(_walk(f"{name}.{child_name}", child, main_path and child_name not in side, rows))
        if isinstance(op, p.Residual) and op.drop_path > 0:
            rows.append(ModuleRow(f"{name}.drop_path", name.count(".") + 2, 0, 0, 0, 0))
    rows[index] = ModuleRow(name, rows[index].depth, total.params, total.flops, total.macs, total.activations)
    return total


def module_counts(plan: p.Plan) -> list[ModuleRow]:
    """One row per module of the plan's model, the model itself ("") first."""
    rows: list[ModuleRow] = [ModuleRow("", 0, 0, 0, 0, 0)]
    total = Counts()
    for name, op in plan.children:
        total.add(_walk(name, op, True, rows))
    rows[0] = ModuleRow("", 0, total.params, total.flops, total.macs, total.activations)
    return rows
