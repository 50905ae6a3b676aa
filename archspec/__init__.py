"""archspec: ResNets, VGGs and RegNets described in YAML, compiled into PyTorch, measured analytically.

Importing archspec does not import torch; only building a module does. The names below load on
first use, so that `import archspec` (and the command line's start) stays instant.
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
    "Mark": "archspec.errors",
    "Problem": "archspec.errors",
    "SpecError": "archspec.errors",
}

if TYPE_CHECKING:
    from archspec.api import Complexity, Plan, Spec, build, count, list_specs, load_checkpoint, load_plan, load_spec
    from archspec.errors import Mark, Problem, SpecError


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'archspec' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Complexity",
    "Mark",
    "Plan",
    "Problem",
    "Spec",
    "SpecError",
    "__version__",
    "build",
    "count",
    "list_specs",
    "load_checkpoint",
    "load_plan",
    "load_spec",
]
