"""archspec: ResNets, VGGs and RegNets described in YAML, compiled into PyTorch, measured analytically.

Importing archspec does not import torch; only building a module does. The names below (the API, and the
result types the commands report: `FlopsRow`, `BuildResult`, ...) load on first use, so that
`import archspec` (and the command line's start) stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_API = {
    "Complexity": "archspec.api",
    "Plan": "archspec.api",
    "Spec": "archspec.api",
    "build": "archspec.api",
    "count": "archspec.api",
    "list_specs": "archspec.api",
    "load_checkpoint": "archspec.api",
    "load_plan": "archspec.api",
    "load_spec": "archspec.api",
    "BenchResult": "archspec.report.results",
    "BuildResult": "archspec.report.results",
    "CountsPair": "archspec.report.results",
    "ExportResult": "archspec.report.results",
    "FieldChange": "archspec.report.results",
    "FlopsRow": "archspec.report.results",
    "Measurement": "archspec.report.results",
    "ModuleRow": "archspec.report.results",
    "Ratio": "archspec.report.results",
    "RoadmapStep": "archspec.report.results",
    "SpecDiff": "archspec.report.results",
    "SpecSummary": "archspec.report.results",
    "StageRow": "archspec.report.results",
    "TrainResult": "archspec.report.results",
    "Mark": "archspec.errors",
    "Problem": "archspec.errors",
    "SpecError": "archspec.errors",
}

if TYPE_CHECKING:
    from archspec.api import Complexity, Plan, Spec, build, count, list_specs, load_checkpoint, load_plan, load_spec
    from archspec.errors import Mark, Problem, SpecError
    from archspec.report.results import (
        BenchResult,
        BuildResult,
        CountsPair,
        ExportResult,
        FieldChange,
        FlopsRow,
        Measurement,
        ModuleRow,
        Ratio,
        RoadmapStep,
        SpecDiff,
        SpecSummary,
        StageRow,
        TrainResult,
    )


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'archspec' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "BenchResult",
    "BuildResult",
    "Complexity",
    "CountsPair",
    "ExportResult",
    "FieldChange",
    "FlopsRow",
    "Mark",
    "Measurement",
    "ModuleRow",
    "Plan",
    "Problem",
    "Ratio",
    "RoadmapStep",
    "Spec",
    "SpecDiff",
    "SpecError",
    "SpecSummary",
    "StageRow",
    "TrainResult",
    "__version__",
    "build",
    "count",
    "list_specs",
    "load_checkpoint",
    "load_plan",
    "load_spec",
]
