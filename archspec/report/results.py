"""The results commands return, as frozen dataclasses: the renderers (`archspec.report.tables`) read these,
and their JSON is `dataclasses.asdict` of them, field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ratio:
    """A row's parameters and FLOPs over one baseline's, at the row's input size (None: not comparable)."""

    params_ratio: float | None
    flops_ratio: float | None


@dataclass(frozen=True)
class FlopsRow:
    """One row of `archspec flops`: a spec, or a torchvision or timm model, counted at one input size."""

    name: str
    source: str
    baseline: bool
    input_size: list[int]
    layers: int | None  # None for a library model: depth is a property of a plan
    params: int
    flops: int
    macs: int
    activations: int
    flops_by_op: dict[str, int]
    paper: str
    counter: str  # "analytic" or "fvcore"
    vs: dict[str, Ratio] = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleRow:
    """One module of a model's hierarchy, with what it and everything below it hold and cost."""

    module: str  # its name in `model.named_modules()`; "" for the model itself
    depth: int
    params: int
    flops: int
    macs: int
    activations: int


@dataclass(frozen=True)
class SpecSummary:
    """One stock spec in `archspec list`."""

    name: str
    layers: int
    params: int
    flops: int
    input: str
    description: str


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class CountsPair:
    what: str
    before: int
    after: int


@dataclass(frozen=True)
class SpecDiff:
    """`archspec diff A B`: the resolved fields that differ, and the counts side by side."""

    a_name: str
    a_source: str
    b_name: str
    b_source: str
    changes: list[FieldChange]
    counts: list[CountsPair]


@dataclass(frozen=True)
class StageRow:
    """One row of `archspec build`'s report: the stem, a stage or the head."""

    stage: str
    blocks: int | str
    block: str
    shortcut: str
    channels: str
    stride: int | str
    output: str
    params: int
    flops: int


@dataclass(frozen=True)
class BuildResult:
    name: str
    device: str
    device_name: str
    batch: int
    input: list[int]
    output_shape: list[Any]
    layers: int
    params: int
    flops: int
    macs: int
    stages: list[StageRow]
    build_seconds: float
    forward_seconds: float
    checkpoint: str | None
    weights: str | None = None


@dataclass(frozen=True)
class Measurement:
    """One model in one mode of `archspec bench`."""

    images_per_s: float
    median_ms: float
    min_ms: float
    max_ms: float
    peak_memory_bytes: int | None


@dataclass(frozen=True)
class BenchResult:
    """`archspec bench`: every model under test in every mode, and archspec's throughput over each peer's."""

    spec: str
    source: str
    peers: dict[str, str]
    device: str
    device_name: str
    torch: str
    threads: int
    params: int
    batch: int
    input: list[int]
    amp: str | None
    channels_last: bool
    compile: bool
    warmup: int
    iters: int
    results: dict[str, dict[str, Measurement]]
    vs: dict[str, dict[str, float]]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResult:
        """The result written by `archspec bench --format json`."""
        results = {
            label: {mode: Measurement(**m) for mode, m in modes.items()} for label, modes in data["results"].items()
        }
        return cls(**{**data, "results": results})


@dataclass(frozen=True)
class ExportResult:
    """What `archspec export` wrote and how closely the written model reproduced PyTorch's outputs."""

    path: str
    format: str
    batch: int | None  # None: dynamic
    input_shape: list[Any]  # with "batch" for a dynamic axis
    output_names: list[str]
    bytes: int
    checked_batch: int  # 0: not checked
    max_abs_difference: float | None
    max_abs_output: float | None
    seconds: float


@dataclass
class TrainResult:
    """One trained spec of `archspec train`: its per-epoch metrics (the last row is the final one)."""

    name: str
    residual: bool
    layers: int
    params: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "residual": self.residual,
            "layers": self.layers,
            "params": self.params,
            **self.final,
            "history": self.history,
        }


@dataclass(frozen=True)
class RoadmapStep:
    """One step of a paper's roadmap (`archspec paper convnext`): its spec, the change the paper names, archspec's
    counts at the paper's input size, and the GFLOPs the paper publishes for it."""

    step: str  # the spec's file name without `.yaml`
    change: str  # the paper's label for the step
    spec: str  # the spec's path under the stock specs' folder
    params: int
    macs: int  # conv and fc multiply-adds (torchvision's `_ops`)
    flops: int  # fvcore's convention (also norms and pooling)
    paper_gflops: float
    macs_round_to: float  # MACs in G, rounded as the paper rounds (one decimal)
    flops_round_to: float
