"""The knobs of the spec language, each as a small overlay on ResNet-50, with its effect on the counts.

`python -m archspec.tools.variants` prints the Markdown table embedded in docs/variants.md; a test
regenerates it and compares.
"""

from __future__ import annotations

from archspec.api import count
from archspec.report.render import human, render

BASE = "resnet50"

# (knob, overrides in --set syntax). Each changes one thing relative to ResNet-50.
KNOBS: list[tuple[str, list[str]]] = [
    ("paper's stride placement", ["stride_in=1x1"]),
    ("deep stem (ResNet-C)", ["stem={type: deep, width: 64, inner_width: 32}"]),
    ("stem without max pool", ["stem.pool=false"]),
    ("average-pool downsampling (ResNet-D)", ["avg_down=true"]),
    ("squeeze-and-excitation, reduction 16", ["se={reduction: 16}"]),
    ("pre-activation blocks", ["preact=true"]),
    ("ResNeXt 32x4d", ["groups=32", "width_per_group=4"]),
    ("wide (2x inner width)", ["width_per_group=128"]),
    ("shortcut option C", ["shortcut=C"]),
    ("stochastic depth 0.1, dropout 0.2", ["drop_path=0.1", "head.dropout=0.2"]),
    ("output stride 16 (dilation)", ["output_stride=16"]),
    ("output stride 8 (dilation)", ["output_stride=8"]),
    ("group norm, 32 groups", ["norm=group", "norm_groups=32"]),
    ("no normalization", ["norm=none"]),
    ("SiLU activation", ["activation=silu"]),
    ("4 input channels, 10 classes", ["input.channels=4", "head.num_classes=10"]),
    ("features only (stages 2-4)", ["head.features=[2, 3, 4]"]),
]


def knob_table() -> str:
    """Markdown: each knob's YAML and its parameters and FLOPs against plain ResNet-50."""
    base = count(BASE)
    rows = [
        {
            "knob": "resnet50 (base)",
            "set": "",
            "params": f"{base.params:,}",
            "dp": "",
            "flops": human(base.flops),
            "df": "",
        }
    ]
    for title, overrides in KNOBS:
        c = count(BASE, overrides=overrides)
        rows.append(
            {
                "knob": title,
                "set": " ".join(f"`{o}`" for o in overrides),
                "params": f"{c.params:,}",
                "dp": f"{(c.params - base.params) / base.params * 100:+.1f}%",
                "flops": human(c.flops),
                "df": f"{(c.flops - base.flops) / base.flops * 100:+.1f}%",
            }
        )
    columns = [
        ("knob", "knob"),
        ("set", "--set"),
        ("params", "parameters"),
        ("dp", "vs base"),
        ("flops", "GFLOPs"),
        ("df", "vs base"),
    ]
    return render(rows, columns, "markdown")


if __name__ == "__main__":
    print(knob_table())
