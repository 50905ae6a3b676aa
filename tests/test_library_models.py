"""torchvision:NAME and timm:NAME beside specs: rows and baselines of `archspec flops`, counted with fvcore on the
model the library builds (the numbers here are fvcore's, run by the test itself), and peers of `archspec bench`."""

from __future__ import annotations

import json
import logging
import re
import warnings

import pytest
import timm
import torch
import torchvision

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # fvcore's import touches torch.jit
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis


def fvcore(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, object]:
    """What a row reports, measured here: fvcore on one 3-channel image in eval mode."""
    model = model.eval()
    x = torch.zeros(1, 3, *size)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = {op: int(n) for op, n in flops.by_operator().items() if n}
        activations = int(ActivationCountAnalysis(model, x).unsupported_ops_warnings(False).total())
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "flops": int(flops.total()),
        "macs": by_op.get("conv", 0) + by_op.get("linear", 0),
        "activations": activations,
        "flops_by_op": by_op,
        "input_size": list(size),
    }


def counted(row: dict[str, object]) -> dict[str, object]:
    return {key: row[key] for key in ("params", "flops", "macs", "activations", "flops_by_op", "input_size")}


def rows_of(cli, *args: str) -> list[dict[str, object]]:
    result = cli("flops", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_torchvision_row_is_fvcore_on_torchvisions_own_model(cli):
    row = rows_of(cli, "torchvision:resnet18")[0]
    assert counted(row) == fvcore(torchvision.models.resnet18(), (224, 224))
    assert (row["name"], row["source"], row["counter"], row["layers"], row["paper"]) == (
        "torchvision:resnet18",
        "torchvision:resnet18",
        "fvcore",
        None,
        "",
    )


def test_a_timm_row_is_fvcore_on_timms_own_model_at_the_asked_size(cli):
    row = rows_of(cli, "timm:mobilenetv3_small_100", "--size", "128x96")[0]
    assert counted(row) == fvcore(timm.create_model("mobilenetv3_small_100"), (128, 96))


def test_a_model_with_a_pretrained_tag_is_known_to_timm(cli):
    row = rows_of(cli, "timm:resnet18.a1_in1k", "--size", "64")[0]
    assert row["params"] == sum(p.numel() for p in timm.create_model("resnet18").parameters())


def test_library_rows_and_baselines_have_the_same_columns_and_ratios_as_specs(cli):
    rows = rows_of(cli, "resnet18", "torchvision:mobilenet_v3_small", "--vs", "torchvision:vgg16", "--size", "64")
    assert [(r["name"], r["counter"], r["baseline"]) for r in rows] == [
        ("resnet18", "analytic", False),
        ("torchvision:mobilenet_v3_small", "fvcore", False),
        ("torchvision:vgg16", "fvcore", True),
    ]
    vgg16 = rows[2]
    assert counted(vgg16) == fvcore(torchvision.models.vgg16(), (64, 64))
    for row in rows:
        assert row["vs"] == {
            "torchvision:vgg16": {
                "params_ratio": row["params"] / vgg16["params"],
                "flops_ratio": row["flops"] / vgg16["flops"],
            }
        }


def test_a_library_baseline_is_counted_at_each_rows_input_size(cli):
    rows = rows_of(cli, "resnet20", "--vs", "torchvision:resnet18")
    resnet20, baseline = rows
    at_32 = fvcore(torchvision.models.resnet18(), (32, 32))
    # The baseline's row shows the figures the ratios used, and says that they are not at its own 224x224.
    assert (baseline["name"], baseline["input_size"]) == ("torchvision:resnet18 at 32x32", [32, 32])
    assert (baseline["params"], baseline["flops"]) == (at_32["params"], at_32["flops"])
    assert resnet20["vs"]["torchvision:resnet18"] == {
        "params_ratio": resnet20["params"] / at_32["params"],
        "flops_ratio": resnet20["flops"] / at_32["flops"],
    }


def test_rows_at_several_sizes_show_the_baseline_at_each_and_an_input_column(cli):
    result = cli("flops", "resnet20", "resnet18", "--vs", "torchvision:resnet18")
    assert result.exit_code == 0, result.output
    header, _, *lines = result.stdout.splitlines()
    assert "input" in header.split()
    names = [line.split("  ")[0].strip() for line in lines[:4]]
    assert names == [
        "resnet20",
        "resnet18",
        "torchvision:resnet18 at 32x32 (baseline)",
        "torchvision:resnet18 (baseline)",
    ]


def test_rows_changed_by_set_say_so(cli):
    rows = rows_of(cli, "resnet20", "--set", "stages.0.depth=5")
    assert [row["name"] for row in rows] == ["resnet20 (--set)", "vgg19 at 32x32"]


def test_the_table_says_which_rows_fvcore_counted(cli):
    result = cli("flops", "resnet18", "timm:resnet18", "--vs", "resnet18", "--size", "64")
    assert result.exit_code == 0, result.output
    header, _, *lines = result.stdout.splitlines()
    assert header.split()[:8] == ["name", "layers", "params", "FLOPs", "MACs", "paper", "counter", "params/resnet18"]
    assert lines[0].split()[0] == "resnet18" and "analytic" in lines[0].split()
    assert lines[1].split()[:2] == ["timm:resnet18", "-"] and "fvcore" in lines[1].split()
    assert lines[-1].endswith("torchvision and timm models are counted with fvcore on the model the library builds.")
    assert "archspec: counting timm:resnet18 ..." in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["torchvision:resnet5"],
            "torchvision:resnet5: model: torchvision has no model named 'resnet5'; "
            "did you mean `torchvision:resnet50`, `torchvision:resnet152`, `torchvision:resnet34`?",
        ),
        (
            ["timm:resnet5x"],
            "timm:resnet5x: model: timm has no model named 'resnet5x'; "
            "did you mean `timm:resnet50`, `timm:resnet51q`, `timm:resnet50t`?",
        ),
        (
            ["resnet18", "--vs", "torchvision:vgg61"],
            "--vs torchvision:vgg61: vs: torchvision has no model named 'vgg61'; did you mean `torchvision:vgg19`, "
            "`torchvision:vgg16`, `torchvision:vgg13`?",
        ),
        (
            ["timm:qqqq"],
            f"timm:qqqq: model: timm has no model named 'qqqq'; timm.list_models() lists its {len(timm.list_models())} "
            "models",
        ),
        (["keras:resnet50"], "keras:resnet50: model: unknown library 'keras'; use torchvision:NAME or timm:NAME"),
    ],
    ids=["torchvision", "timm", "a baseline", "nothing close", "another library"],
)
def test_an_unknown_name_is_one_line_with_the_closest_names(cli, args, message):
    result = cli("flops", *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_a_model_that_cannot_take_the_size_is_one_line(cli):
    result = cli("flops", "timm:vit_tiny_patch16_224", "--size", "64")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "timm:vit_tiny_patch16_224: --size: cannot take 64x64 inputs: Input height (64) doesn't match model (224)."
    )


def test_a_library_baseline_that_cannot_take_the_size_leaves_its_ratios_out_with_a_note(cli):
    result = cli("flops", "torchvision:resnet18", "--vs", "torchvision:vgg11", "--size", "8", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["vs"] == {"torchvision:vgg11": {"params_ratio": None, "flops_ratio": None}}
    assert (
        "archspec: baseline torchvision:vgg11 cannot take 8x8 inputs, so its ratios are left out: its feature maps "
        "would shrink below its kernels' size, or it needs another input size"
    ) in result.stderr
    assert "Error" not in result.stderr


def test_set_applies_to_specs_and_says_so_for_library_rows(cli):
    result = cli(
        "flops", "resnet18", "torchvision:resnet18", "--set", "head.num_classes=10", "--size", "64", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    ours, theirs = json.loads(result.stdout)[:2]
    assert ours["params"] == theirs["params"] - 990 * 513
    assert "archspec: --set changes specs only; torchvision:resnet18 counted as the library builds it" in result.stderr


# --- bench --vs LIBRARY:NAME -------------------------------------------------------------------

QUICK = ["--device", "cpu", "--size", "64", "--batch", "2", "--warmup", "0", "--iters", "1", "--threads", "1"]


def test_bench_times_any_library_model_beside_the_spec(cli):
    result = cli(
        "bench",
        "resnet18",
        "--vs",
        "torchvision:mobilenet_v3_small",
        "--vs",
        "timm:resnet18",
        *QUICK,
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["peers"] == {"torchvision:mobilenet_v3_small": "mobilenet_v3_small", "timm:resnet18": "resnet18"}
    for peer in report["peers"]:
        ratio = (
            report["results"]["archspec"]["inference"]["images_per_s"]
            / report["results"][peer]["inference"]["images_per_s"]
        )
        assert report["vs"][peer]["throughput_ratio"] == pytest.approx(ratio, rel=1e-3)


def test_bench_refuses_an_unknown_library_model_with_the_closest_names(cli):
    result = cli("bench", "resnet18", "--vs", "timm:resnet5x", *QUICK)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "--vs timm:resnet5x: vs: timm has no model named 'resnet5x'; "
        "did you mean `timm:resnet50`, `timm:resnet51q`, `timm:resnet50t`?"
    )


@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn", "deeplabv3_resnet50", "maskrcnn_resnet50_fpn"])
def test_a_detection_or_segmentation_model_is_built_without_downloading_its_backbone(tmp_path, monkeypatch, name):
    from archspec.lang.refs import parse_model_ref
    from archspec.nn.library import build_library_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    ref = parse_model_ref(f"torchvision:{name}")
    assert ref is not None
    model = build_library_model(ref, "meta")
    # torchvision's published count for the architecture counts its backbone's frozen norms as buffers; a fresh
    # backbone's norms are parameters: together they are the same tensors.
    published = next(iter(torchvision.models.get_model_weights(name))).meta["num_params"]
    frozen = sum(
        m.weight.numel() + m.bias.numel() for m in model.backbone.modules() if type(m).__name__ == "BatchNorm2d"
    )
    if not name.startswith("deeplab"):  # deeplabv3's published count includes the auxiliary head of its weights
        assert sum(p.numel() for p in model.parameters()) - frozen == published
    assert not (tmp_path / "torch-home").exists()


def test_a_timm_name_with_an_unknown_pretrained_tag_is_one_line(cli):
    result = cli("flops", "timm:resnet50.no_such_tag")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "timm:resnet50.no_such_tag: model: timm's resnet50 has no pretrained tag 'no_such_tag'; its tags are "
        + ", ".join(n.partition(".")[2] for n in timm.list_pretrained("resnet50.*")[:5])
        + f" and {len(timm.list_pretrained('resnet50.*')) - 5} more"
    )


@pytest.mark.slow  # timm's 1-billion-parameter ViT is made on the meta device in a fresh interpreter
def test_a_library_model_the_memory_limit_cannot_hold_is_refused_before_it_is_built():
    """Under `ulimit -v` (a process limit /proc/meminfo does not show) a 1-billion-parameter model is refused
    from its shape-only copy, never built."""
    import resource
    import subprocess
    import sys

    from conftest import ROOT

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    result = subprocess.run(
        [sys.executable, "-m", "archspec", "flops", "timm:vit_giant_patch14_clip_224"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=limit,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert re.fullmatch(
        r"timm:vit_giant_patch14_clip_224: model: needs about 3\.77 GiB for its weights but the cpu has \d+\.\d\d "
        r"GiB free; pass --force",
        result.stderr.strip().splitlines()[-1],
    ), result.stderr
