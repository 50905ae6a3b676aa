"""Property test: random small specs over every knob (network-wide and per stage, and stages written
as a RegNet generator) build, have the predicted output shape, and their analytic parameters and
FLOPs equal the module's and fvcore's."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archspec
from archspec.counting.analytic import complexity
from archspec.lang.schema import KNOBS
from archspec.nn.fvcore_count import fvcore_complexity
from archspec.plan import load_plan
from archspec.plan.blocks import BLOCKS

# Random specs per run: a sample in the fast tier, many more in the slow one; ARCHSPEC_PROPERTY_EXAMPLES
# sets both (a long hunt: ARCHSPEC_PROPERTY_EXAMPLES=5000 pytest -m slow -k random_specs).
EXAMPLES = int(os.environ.get("ARCHSPEC_PROPERTY_EXAMPLES", "12"))
SLOW_EXAMPLES = int(os.environ.get("ARCHSPEC_PROPERTY_EXAMPLES", "600"))

widths = st.sampled_from([4, 8, 12, 16])


# The knobs each kind takes that a stage may set flat, read off the registry.
STAGE_KNOBS = {name: [knob for knob in kind.params.knobs() if knob in KNOBS] for name, kind in BLOCKS.items()}
KNOB_VALUES = {
    "shortcut": st.sampled_from(["A", "B", "C"]),
    "groups": st.sampled_from([1, 2, 4]),
    "group_width": st.sampled_from([1, 2, 4, 8]),
    "width_per_group": st.sampled_from([16, 64, 128]),
    "bottleneck_ratio": st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    "expansion": st.sampled_from([1, 2, 4]),
    "stride_in": st.sampled_from(["1x1", "3x3"]),
    "avg_down": st.booleans(),
    "se": st.one_of(
        st.just(False),
        st.fixed_dictionaries(
            {
                "reduction": st.sampled_from([2, 4, 16]),
                "divisor": st.sampled_from([1, 4, 8]),
                "of": st.sampled_from(["output", "input"]),
            }
        ),
        st.fixed_dictionaries({"ratio": st.sampled_from([0.25, 0.5]), "of": st.sampled_from(["output", "input"])}),
    ),
    "preact": st.booleans(),
    "activation": st.sampled_from(["relu", "relu6", "silu", "gelu"]),
}
# Values for the knobs a kind takes only in its own `block:` mapping (those not in KNOBS).
OWN_KNOB_VALUES = {
    "expand_ratio": st.sampled_from([1.0, 2.0, 6.0]),
    "kernel": st.sampled_from([3, 5]),
    "se_ratio": st.sampled_from([0.0, 0.25, 0.5]),
    "layer_scale": st.sampled_from([1e-6, 0.5, None]),
    "depthwise": st.sampled_from(["first", "middle"]),
    "norm": st.sampled_from(["layer", "batch"]),
    "norms": st.sampled_from(["one", "each"]),
    "activations": st.sampled_from(["one", "each"]),
    "downsample": st.sampled_from(["layer", "block"]),
}
OWN_KNOBS = {name: [knob for knob in kind.params.knobs() if knob not in KNOBS] for name, kind in BLOCKS.items()}
# Each layout family with the kinds its networks may hold, read off the registry.
FAMILIES = {
    family: [name for name, kind in BLOCKS.items() if kind.family == family or family in kind.joins]
    for family in dict.fromkeys(kind.family for kind in BLOCKS.values())
}


@st.composite
def stage_overrides(draw, kind: str) -> dict:
    """Some of the knobs that shape `kind`, set on one stage."""
    if not STAGE_KNOBS[kind]:
        return {}
    names = draw(st.lists(st.sampled_from(STAGE_KNOBS[kind]), max_size=3, unique=True))
    return {name: draw(KNOB_VALUES[name]) for name in names if not (name == "group_width" and "groups" in names)}


@st.composite
def specs(draw):
    family = draw(st.sampled_from(["resnet", *FAMILIES]))
    block = draw(st.sampled_from(FAMILIES[family]))
    residual = BLOCKS[block].residual
    stages = []
    present = [BLOCKS[block]]  # the kinds the network holds: its network-wide knobs must suit them all
    for _ in range(draw(st.integers(1, 3))):
        stage = {"depth": draw(st.integers(1, 2)), "width": draw(widths), "stride": draw(st.sampled_from([None, 1, 2]))}
        kind = block
        if draw(st.booleans()):
            kind = draw(st.sampled_from(FAMILIES[family]))
            stage["block"] = kind
            present.append(BLOCKS[kind])
        if draw(st.booleans()):
            overrides = draw(stage_overrides(kind))
            if "block" in stage and draw(st.booleans()):
                stage["block"] = {"type": kind, **overrides}  # the same knobs in the kind's own mapping
            else:
                stage.update(overrides)
        if OWN_KNOBS[kind] and draw(st.booleans()):
            own = draw(st.lists(st.sampled_from(OWN_KNOBS[kind]), min_size=1, max_size=2, unique=True))
            mapping = stage["block"] if isinstance(stage.get("block"), dict) else {"type": kind}
            stage["block"] = {**mapping, **{name: draw(OWN_KNOB_VALUES[name]) for name in own}}
        stages.append({k: v for k, v in stage.items() if v is not None})
    spec = {
        "input": {
            "channels": draw(st.integers(1, 4)),
            "size": draw(st.one_of(st.integers(16, 40), st.lists(st.integers(16, 40), min_size=2, max_size=2))),
        },
        "stem": {
            "type": draw(
                st.sampled_from(
                    ["imagenet", "cifar", "deep", "simple", "patchify", "none"] if block != "vgg" else ["cifar", "none"]
                )
            )
        },
        "block": block,
        "stages": [{k: v for k, v in s.items() if v is not None} for s in stages],
        "norm": draw(st.sampled_from(["batch", "group", "none"])),
        "norm_groups": draw(st.sampled_from([1, 2, 4])),
        "activation": draw(st.sampled_from(["relu", "relu6", "silu", "gelu"])),
        "head": {
            "num_classes": draw(st.integers(1, 12)),
            "hidden": draw(st.lists(st.integers(1, 16), max_size=2)),
            "pool": draw(st.sampled_from(["avg", "max", "none"])),
        },
    }
    if spec["stem"]["type"] != "none":
        spec["stem"]["width"] = draw(widths)
        spec["stem"]["pool"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["head"]["conv"] = draw(widths)
    if draw(st.booleans()):
        spec["scale"] = {"width": draw(st.sampled_from([0.5, 1.0, 1.3])), "depth": draw(st.sampled_from([1.0, 1.5]))}
        spec["scale"]["divisor"] = draw(st.sampled_from([1, 4, 8]))
    if spec["head"]["pool"] == "none":
        spec["head"]["pool"] = "avg"
        spec["head"]["pool_size"] = draw(st.sampled_from([1, 2, [1, 2]]))
    if draw(st.booleans()) and block != "vgg":
        spec["head"] = {
            "features": sorted(
                draw(st.sets(st.integers(0 if spec["stem"]["type"] != "none" else 1, len(stages)), min_size=1))
            )
        }

    def takes(knob: str) -> bool:
        return all(knob in kind.knobs | kind.tolerates for kind in present)

    if residual:
        if takes("shortcut"):
            spec["shortcut"] = draw(st.sampled_from(["A", "B", "C"]))
        if takes("preact"):
            spec["preact"] = draw(st.booleans())
        if takes("avg_down"):
            spec["avg_down"] = draw(st.booleans()) and spec.get("shortcut") != "A"  # A has no projection to pool for
        spec["drop_path"] = draw(st.sampled_from([0.0, 0.2]))
        spec["zero_init_residual"] = draw(st.booleans())
        if takes("se") and draw(st.booleans()):
            spec["se"] = {"reduction": draw(st.sampled_from([2, 4, 16])), "divisor": draw(st.sampled_from([1, 4, 8]))}
        if draw(st.booleans()):
            spec["output_stride"] = draw(st.sampled_from([8, 16]))
    if block == "bottleneck" and takes("groups"):
        spec["stride_in"] = draw(st.sampled_from(["1x1", "3x3"]))
        spec["groups"] = draw(st.sampled_from([1, 2, 4]))
        spec["width_per_group"] = draw(st.sampled_from([16, 64, 128]))
        spec["expansion"] = draw(st.sampled_from([1, 2, 4]))
    if block == "regnet" and takes("group_width"):
        spec["group_width"] = draw(st.sampled_from([1, 2, 4, 8]))
        spec["bottleneck_ratio"] = draw(st.sampled_from([1.0, 2.0]))
        if draw(st.booleans()):
            # The stages as RegNet's generator writes them, at a toy scale; the generator, not the network,
            # gives them their group width and fits their widths to its bottleneck ratio.
            del spec["group_width"]
            se_ratio = draw(st.booleans())
            if se_ratio:
                spec.pop("se", None)
            spec["stages"] = {
                "regnet": {
                    "depth": draw(st.integers(1, 5)),
                    "w0": draw(st.sampled_from([8, 16])),
                    "wa": draw(st.sampled_from([0.0, 3.5, 8.0, 12.25])),
                    "wm": draw(st.sampled_from([1.5, 2.0, 2.5])),
                    "group_width": draw(st.sampled_from([1, 4, 8])),
                    "bottleneck_ratio": spec.pop("bottleneck_ratio"),
                    **({"se_ratio": 0.25} if se_ratio else {}),
                }
            }
    if family != "resnet":
        spec.pop("preact", None)
    return spec


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}


def _check_random_spec(spec: dict) -> None:
    try:
        plan = load_plan(spec)
    except archspec.SpecError:
        # Impossible combinations (option A shrinking width, a map shrinking to zero,
        # channels not divisible by the group count) are rejected before any tensor exists.
        assume(False)
    model = archspec.build(spec, device="cpu").eval()
    analytic = complexity(plan)
    assert analytic.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, plan.input_channels, *plan.input_size)
    with torch.no_grad():
        y = model(x)
    shapes = [tuple(t.shape) for t in y] if isinstance(y, list) else [tuple(y.shape)]
    assert shapes == [(2, *s) for s in plan.output_shapes]
    reference = fvcore_complexity(plan)
    assert analytic.flops_by_op == reference.flops_by_op
    assert analytic.activations == reference.activations


@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(specs())
def test_random_specs_build_with_predicted_shape_and_exact_counts(spec):
    _check_random_spec(spec)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **_SETTINGS)
@given(specs())
def test_many_random_specs_build_with_predicted_shape_and_exact_counts(spec):
    _check_random_spec(spec)
