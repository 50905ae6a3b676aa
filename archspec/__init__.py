"""archspec: ResNets (and VGG, and RegNets) described in YAML, compiled into PyTorch, measured analytically.

Importing archspec does not import torch; only building a module does.
"""

from archspec.api import Complexity, Plan, Spec, build, count, list_specs, load_checkpoint, load_plan, load_spec
from archspec.errors import Mark, Problem, SpecError

__version__ = "0.2.0"

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
