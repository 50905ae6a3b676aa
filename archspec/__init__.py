"""archspec: ResNets (and VGG) described in YAML, compiled into PyTorch, measured analytically.

Importing archspec does not import torch; only building a module does.
"""

from archspec.api import build, count, load_plan
from archspec.errors import Problem, SpecError
from archspec.lang.validate import load_spec

__version__ = "0.1.0"


def load_checkpoint(path, device="auto"):
    """Rebuild the model saved by `archspec build --out` (spec and weights); see `archspec.nn.checkpoint`."""
    from archspec.nn.checkpoint import load_checkpoint as _load

    return _load(path, device)


__all__ = ["Problem", "SpecError", "build", "count", "load_checkpoint", "load_plan", "load_spec", "__version__"]
