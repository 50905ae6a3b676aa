"""`archspec flops SPEC --by-module`: counts per module of the built model's hierarchy, read off the plan without
torch, equal module for module to fvcore's `by_module` on the built model and to the module's own parameters."""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import warnings

import pytest
import torch
from conftest import CONVNEXTS, STOCK, run_without_torch

import archspec
from archspec.counting.modules import module_counts
from archspec.nn.fvcore_count import zeros_model
from archspec.plan import load_plan
from archspec.tools.flops import module_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # fvcore's import touches torch.jit
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

# One spec per family of block, stem and shortcut; the sweep over every stock spec is in the slow tier.
FAMILIES = [
    "resnet20",  # basic blocks, option A (zero-padding) shortcuts, CIFAR stem
    "resnet50",  # bottleneck blocks, projection shortcuts
    "vgg11_bn",  # plain convs with batch norm, the three-layer classifier
    "resnet18d",  # deep stem, average-pool shortcuts (ResNet-D)
    "seresnet50",  # squeeze-and-excitation
    "preact_resnet110",  # pre-activation blocks
    "regnet_x_400mf",  # grouped bottlenecks, RegNet stem and names
    "regnet_y_400mf",  # RegNet with squeeze-and-excitation
    "convnext_tiny",  # patchify stem, depthwise convs, per-pixel linear layers, layer norms and layer scales
    "mobilenet_v2",  # inverted residuals, depthwise convs, the head's conv in `features`
]
DEPTHS = (1, 2, 3)
# (params, FLOPs, MACs, activations) of a module, by its name in model.named_modules()
Counts = dict[str, tuple[int, int, int, int]]


def fvcore_by_module(plan) -> Counts:
    """fvcore's FlopCountAnalysis and ActivationCountAnalysis per module of the built model (one trace each),
    with MACs as conv + linear flops and parameters as `sum(p.numel() for p in module.parameters())`."""
    model = zeros_model(plan).eval()
    x = torch.zeros(1, plan.input_channels, *plan.input_size)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module, by_operator = flops.by_module(), flops.by_module_and_operator()
        activations = ActivationCountAnalysis(model, x).unsupported_ops_warnings(False).by_module()
    return {
        name: (
            sum(p.numel() for p in module.parameters()),
            int(by_module[name]),
            int(by_operator[name].get("conv", 0) + by_operator[name].get("linear", 0)),
            int(activations[name]),
        )
        for name, module in model.named_modules()
    }


@functools.cache
def fvcore_stock(name: str) -> Counts:
    return fvcore_by_module(load_plan(name))


def depth_of(name: str) -> int:
    return 0 if name == "" else name.count(".") + 1


def assert_equal_to_fvcore(source: str, expected: Counts, depth: int, **options) -> None:
    rows = module_rows(source, depth=depth, **options)
    want = [(name, counts) for name, counts in expected.items() if depth_of(name) <= depth]
    assert [row.module for row in rows] == [name for name, _ in want]
    for row, (name, counts) in zip(rows, want, strict=True):
        assert row.depth == depth_of(name)
        assert (row.params, row.flops, row.macs, row.activations) == counts, name


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("name", FAMILIES)
def test_every_module_equals_fvcore_by_module(name, depth):
    assert_equal_to_fvcore(name, fvcore_stock(name), depth)


@pytest.mark.slow
@pytest.mark.parametrize("name", STOCK)
def test_every_module_of_every_stock_spec_equals_fvcore_by_module(name):
    expected = fvcore_stock(name)
    for depth in DEPTHS:
        assert_equal_to_fvcore(name, expected, depth)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(193, 161), (96, 96)], ids=["193x161", "96"])
@pytest.mark.parametrize("name", CONVNEXTS)
def test_every_convnext_module_equals_fvcore_at_other_sizes(name, size):
    """An odd non-square size (the stride-4 patchify stem and each stride-2 downsampling floor it) and a small one."""
    expected = fvcore_by_module(load_plan(name, input_size=size))
    for depth in DEPTHS:
        assert_equal_to_fvcore(name, expected, depth, input_size=size)


@pytest.mark.parametrize(
    "name,overrides,size",
    [
        ("resnet50", ["drop_path=0.1", "head.hidden=[256]", "head.dropout=0.2"], 160),
        ("resnet50", ["head.features=[2, 3, 4]"], (224, 320)),
        ("resnet18", ["norm=group", "output_stride=8"], 96),
        ("resnet20", ["shortcut=C", "se={reduction: 8}"], 32),
    ],
    ids=["stochastic depth and a hidden head", "features only", "group norm and dilation", "projections and SE"],
)
def test_variants_at_other_sizes_equal_fvcore_by_module(name, overrides, size):
    plan = load_plan(name, overrides=overrides, input_size=size)
    expected = fvcore_by_module(plan)
    assert_equal_to_fvcore(name, expected, depth=64, overrides=overrides, input_size=size)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_model_row_is_the_specs_total_and_each_module_the_sum_of_its_children(name):
    """Each module's counts are its children's, and the parameters it holds itself (ConvNeXt's layer_scale)."""
    rows = module_counts(load_plan(name))
    own = {
        module_name: sum(p.numel() for p in module.parameters(recurse=False))
        for module_name, module in archspec.build(name, device="meta").named_modules()
    }
    total = archspec.count(name)
    assert (rows[0].module, rows[0].params, rows[0].flops, rows[0].macs, rows[0].activations) == (
        "",
        total.params,
        total.flops,
        total.macs,
        total.activations,
    )
    for parent in rows:
        children = [row for row in rows if row.depth == parent.depth + 1 and row.module.startswith(parent.module)]
        children = [row for row in children if parent.module == "" or row.module.startswith(parent.module + ".")]
        if children:
            assert parent.params == own[parent.module] + sum(row.params for row in children), parent.module
            for field in ("flops", "macs", "activations"):
                assert getattr(parent, field) == sum(getattr(row, field) for row in children), (parent.module, field)


def test_depth_zero_is_the_whole_model_only(cli):
    result = cli("flops", "resnet20", "--by-module", "--depth", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"module": "", "depth": 0, "params": 269722, "flops": 40931968, "macs": 40551040, "activations": 188426}
    ]


def test_json_names_modules_as_named_modules_does(cli):
    result = cli("flops", "resnet50", "--by-module", "--depth", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["module"]: row for row in json.loads(result.stdout)}
    # layer3.4.conv2: a 3x3 conv, 256 -> 256 channels, on a 14x14 map.
    assert rows["layer3.4.conv2"] == {
        "module": "layer3.4.conv2",
        "depth": 3,
        "params": 256 * 256 * 9,
        "flops": 256 * 256 * 9 * 14 * 14,
        "macs": 256 * 256 * 9 * 14 * 14,
        "activations": 256 * 14 * 14,
    }
    assert "layer3.4.conv2.weight" not in rows and max(row["depth"] for row in rows.values()) == 3


def test_csv_has_exact_integers_and_the_depth(cli):
    result = cli("flops", "resnet20", "--by-module", "--depth", "1", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["module", "depth", "params", "FLOPs", "MACs", "activations"]
    assert rows[0] == {
        "module": "model",
        "depth": "0",
        "params": "269722",
        "FLOPs": "40931968",
        "MACs": "40551040",
        "activations": "188426",
    }
    assert [row["module"] for row in rows[1:]] == [
        "conv1",
        "bn1",
        "act",
        "layer1",
        "layer2",
        "layer3",
        "avgpool",
        "flatten",
        "fc",
    ]


def test_table_indents_by_depth_and_markdown_is_a_table(cli):
    table = cli("flops", "resnet20", "--by-module", "--depth", "2").stdout.splitlines()
    assert table[0].split() == ["module", "params", "FLOPs", "MACs", "activations"]
    assert table[2].split() == ["model", "269.72K", "40.93M", "40.55M", "188.43K"]
    assert "    layer1.0    4.67K    4.78M    4.72M       32.77K" in table
    assert table[-1].startswith(
        "Each module counts itself and everything inside it, named as in model.named_modules()."
    )
    markdown = cli("flops", "resnet20", "--by-module", "--depth", "1", "--format", "markdown").stdout.splitlines()
    assert markdown[:3] == [
        "| module | params | FLOPs | MACs | activations |",
        "|---|---|---|---|---|",
        "| model | 269.72K | 40.93M | 40.55M | 188.43K |",
    ]


def test_size_and_set_apply(cli):
    result = cli(
        "flops",
        "resnet18",
        "--by-module",
        "--depth",
        "1",
        "--size",
        "112",
        "--set",
        "head.num_classes=10",
        "--format",
        "json",
    )
    rows = {row["module"]: row for row in json.loads(result.stdout)}
    assert rows["fc"]["params"] == 512 * 10 + 10
    assert rows[""]["flops"] == archspec.count("resnet18", overrides=["head.num_classes=10"], input_size=112).flops


@pytest.mark.parametrize(
    "args,message",
    [
        (["resnet18", "resnet34"], "--by-module: by-module: lists the modules of one spec; got 2 (resnet18, resnet34)"),
        (
            ["torchvision:resnet18"],
            "torchvision:resnet18: by-module: per-module counts are read off a spec's plan "
            "and a library model has none; `archspec flops torchvision:resnet18` counts it whole",
        ),
        (
            ["resnet18", "--vs", "vgg19"],
            "--vs: by-module: --by-module lists one spec's modules, analytically and without baselines; leave out --vs",
        ),
        (
            ["resnet18", "--counter", "fvcore"],
            "--counter fvcore: by-module: --by-module lists one spec's modules, analytically and without baselines; "
            "leave out --counter fvcore",
        ),
    ],
    ids=["two specs", "a library model", "a baseline", "fvcore"],
)
def test_what_by_module_does_not_take_is_a_usage_error_on_one_line(cli, args, message):
    result = cli("flops", *args, "--by-module")
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_by_module_does_not_import_torch():
    result = run_without_torch(["flops", "resnet50", "--by-module", "--depth", "3", "--format", "json"])
    assert "NO_TORCH" in result.stderr, result.stderr[-2000:]
    assert json.loads(result.stdout)[0]["params"] == 25557032
