"""The ConvNeXt roadmap (Liu et al. 2022, "A ConvNet for the 2020s", Section 2 and Figure 2): ResNet-50 modernised
one change at a time, as the chain of specs in specs/roadmap/convnext/, counted beside the paper's figures."""

from __future__ import annotations

from archspec.counting.analytic import complexity
from archspec.lang.sources import stock_dir
from archspec.plan import load_plan
from archspec.report.render import render
from archspec.report.results import RoadmapStep

ROADMAP = "roadmap/convnext"
# Figure 2's GFLOPs (the ResNet-50 / Swin-T regime, 224x224), by step: the spec's file name, the paper's label.
CONVNEXT_FIGURE_2: tuple[tuple[str, str, float], ...] = (
    ("00_training_recipe", "ResNet-50", 4.1),
    ("01_stage_ratio", "stage ratio", 4.5),
    ("02_patchify", '"patchify" stem', 4.4),
    ("03_depthwise", "depthwise conv", 2.4),
    ("04_width", "width 96", 5.3),
    ("05_inverted_bottleneck", "inverting dims", 4.6),
    ("06_depthwise_up", "move up depthwise conv", 4.1),
    ("07_kernel7", "kernel 7", 4.2),
    ("08_gelu", "ReLU -> GELU", 4.2),
    ("09_fewer_activations", "fewer activations", 4.2),
    ("10_fewer_norms", "fewer norms", 4.2),
    ("11_layer_norm", "BN -> LN", 4.2),
    ("12_downsampling_layers", "separate downsampling layers", 4.5),
)


def _rounded(count: int) -> float:
    return round(count / 1e9, 1)


def convnext_roadmap() -> list[RoadmapStep]:
    """Every step of the roadmap, counted analytically at 224x224."""
    steps = []
    for name, change, figure in CONVNEXT_FIGURE_2:
        path = f"{ROADMAP}/{name}.yaml"
        counts = complexity(load_plan(str(stock_dir() / path)))
        steps.append(
            RoadmapStep(
                name,
                change,
                f"specs/{path}",
                counts.params,
                counts.macs,
                counts.flops,
                figure,
                _rounded(counts.macs),
                _rounded(counts.flops),
            )
        )
    return steps


def differs(step: RoadmapStep) -> str:
    """Where archspec's count, rounded as the paper rounds, is not the paper's figure: which count, and its value."""
    notes = [
        f"{what} round to {value:.1f}"
        for what, value in (("MACs", step.macs_round_to), ("FLOPs", step.flops_round_to))
        if value != step.paper_gflops
    ]
    return "; ".join(notes)


def roadmap_table(steps: list[RoadmapStep], fmt: str = "table") -> str:
    """The roadmap as `archspec paper convnext` prints it (table, Markdown or CSV)."""
    rows = [
        {
            "step": step.step,
            "change": step.change,
            "params": str(step.params) if fmt == "csv" else f"{step.params:,}",  # CSV: numbers as numbers
            "macs": f"{step.macs / 1e9:.3f}",
            "flops": f"{step.flops / 1e9:.3f}",
            "paper": f"{step.paper_gflops:.1f}",
            "differs": differs(step),
        }
        for step in steps
    ]
    columns = [
        ("step", "step"),
        ("change", "paper's change"),
        ("params", "params"),
        ("macs", "GMACs"),
        ("flops", "GFLOPs"),
        ("paper", "paper"),
        ("differs", "differs from the paper"),
    ]
    return render(rows, columns, fmt)
