"""The golden record of a stock spec: its plan, state_dict layout and counts at two input sizes.

A regression lock, not a correctness claim: the record is what the planner, the state_dict layout
and the analytic counter produce, written to `tests/golden/NAME.json` by
`python tests/golden_record.py` and compared field by field by `tests/test_golden.py`, so a
change to how specs are validated, planned or counted that alters any stock network shows up as
a difference. Torch is not imported.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from archspec.api import load_plan
from archspec.counting.analytic import complexity
from archspec.counting.modules import module_counts
from archspec.lang.sources import stock_names
from archspec.plan import ops as p
from archspec.plan.tensors import state_shapes

GOLDEN = Path(__file__).resolve().parent / "golden"


def second_size(size: tuple[int, int]) -> tuple[int, int]:
    """Another input size for the record: odd and not square, larger in height and smaller in width."""
    height, width = size
    return height + height // 7 + 1, width - width // 8 + 1


def _scalars(op: object) -> dict[str, Any]:
    """An op's own fields: everything that is not another op or a list of named ops."""
    fields = {}
    for item in dataclasses.fields(op):  # type: ignore[arg-type]
        value = getattr(op, item.name)
        if dataclasses.is_dataclass(value) or item.name in ("items", "pre", "body", "post"):
            continue
        fields[item.name] = list(value) if isinstance(value, tuple) else value
    return fields


def _modules(path: str, op: p.Op, rows: list[list[Any]]) -> None:
    """One row per module of the built model, in `named_modules()` order: its path, op type and fields."""
    children = p.children(op)
    if isinstance(op, p.Residual):
        fields = _scalars(op)
        fields["order"] = [[name for name, _ in part] for part in (op.pre, op.body, op.post)]
        rows.append([path, "Residual", fields])
    elif isinstance(op, p.SqueezeExcite):
        rows.append([path, "SqueezeExcite", {"channels": op.channels, "reduced": op.reduced}])
    elif children:
        rows.append([path, type(op).__name__, {}])
    else:
        rows.append([path, type(op).__name__, _scalars(op)])
    for name, child in children:
        _modules(f"{path}.{name}" if path else name, child, rows)


def _record_at(name: str, size: tuple[int, int] | None) -> dict[str, Any]:
    plan = load_plan(name, input_size=size)
    counts = complexity(plan)
    modules: list[list[Any]] = []
    for child_name, op in plan.children:
        _modules(child_name, op, modules)
    return {
        "input_size": list(plan.input_size),
        "plan": {
            "family": plan.family,
            "input_channels": plan.input_channels,
            "taps": None if plan.taps is None else [list(tap) for tap in plan.taps],
            "output_shapes": [list(shape) for shape in plan.output_shapes],
            "sections": [
                {**_scalars(section), "ops": [op_name for op_name, _ in section.ops]} for section in plan.sections
            ],
            "modules": modules,
        },
        "state_dict": [[key, list(shape)] for key, shape in state_shapes(plan).items()],
        "counts": {
            "layers": counts.layers,
            "params": counts.params,
            "flops": counts.flops,
            "flops_by_op": counts.flops_by_op,
            "macs": counts.macs,
            "activations": counts.activations,
            "params_by_section": counts.params_by_section,
            "flops_by_section": counts.flops_by_section,
        },
        "by_module": [dataclasses.astuple(row) for row in module_counts(plan)],
    }


def record(name: str) -> list[dict[str, Any]]:
    """The spec's record at its own input size and at `second_size` of it, as JSON-ready data."""
    first = _record_at(name, None)
    height, width = first["input_size"]
    return [first, _record_at(name, second_size((height, width)))]


def as_json(data: object) -> Any:
    """`data` as it reads back from JSON (tuples become lists), so a fresh record compares equal to a stored one."""
    return json.loads(json.dumps(data))


def main(names: list[str]) -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name in names or stock_names():
        text = json.dumps(record(name), separators=(",", ":"))
        (GOLDEN / f"{name}.json").write_text(text + "\n")
        print(name)


if __name__ == "__main__":
    main(sys.argv[1:])
