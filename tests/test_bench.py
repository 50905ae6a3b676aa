"""`archspec bench`: throughput and memory beside torchvision's or timm's same network, and benchmarks/gpu.sh."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import CONVNEXTS, REGNETS, ROOT, TORCHVISION_ARCHS

import archspec
from archspec.errors import SpecError
from archspec.lang.refs import PEERS, ModelRef
from archspec.nn.library import build_library_model
from archspec.report.results import BenchResult
from archspec.report.tables import bench_markdown
from archspec.tools.bench import peer_name, run_bench
from archspec.tools.progress import Progress

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# A small, quick configuration; one thread, so that a busy machine cannot stall OpenMP.
QUICK = ["--size", "64", "--batch", "2", "--warmup", "1", "--iters", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def resnet18_vs_torchvision():
    """One JSON run of resnet18 with --train against torchvision, shared by the tests that read it."""
    from typer.testing import CliRunner

    from archspec.cli import app

    result = CliRunner().invoke(
        app, ["bench", "resnet18", "--device", "cpu", "--train", "--vs", "torchvision", "--format", "json", *QUICK]
    )
    assert result.exit_code == 0, result.output
    return result


def test_json_reports_images_per_second_from_the_median_step(resnet18_vs_torchvision):
    report = json.loads(resnet18_vs_torchvision.stdout)
    assert (report["spec"], report["device"], report["batch"], report["input"], report["iters"]) == (
        "resnet18",
        "cpu",
        2,
        [3, 64, 64],
        3,
    )
    assert report["params"] == archspec.count("resnet18").params
    for model in ("archspec", "torchvision"):
        for mode in ("inference", "train"):
            m = report["results"][model][mode]
            assert 0 < m["min_ms"] <= m["median_ms"] <= m["max_ms"]
            assert m["images_per_s"] == pytest.approx(2 / (m["median_ms"] / 1e3), rel=1e-3)


def test_vs_reports_archspec_over_peer_throughput_for_each_mode(resnet18_vs_torchvision):
    report = json.loads(resnet18_vs_torchvision.stdout)
    results, ratios = report["results"], report["vs"]["torchvision"]
    assert report["peers"] == {"torchvision": "resnet18"}
    assert ratios["throughput_ratio"] == pytest.approx(
        results["archspec"]["inference"]["images_per_s"] / results["torchvision"]["inference"]["images_per_s"], rel=1e-3
    )
    assert ratios["train_throughput_ratio"] == pytest.approx(
        results["archspec"]["train"]["images_per_s"] / results["torchvision"]["train"]["images_per_s"], rel=1e-3
    )


def test_peak_memory_is_left_empty_on_the_cpu(resnet18_vs_torchvision):
    report = json.loads(resnet18_vs_torchvision.stdout)
    assert all(m["peak_memory_bytes"] is None for modes in report["results"].values() for m in modes.values())


def test_progress_goes_to_stderr_and_stdout_is_only_json(resnet18_vs_torchvision):
    json.loads(resnet18_vs_torchvision.stdout)
    assert "archspec bench: inference: timing archspec and torchvision (6 steps)" in resnet18_vs_torchvision.stderr
    assert "archspec bench: train: warm-up torchvision" in resnet18_vs_torchvision.stderr


def test_bench_leaves_torchs_thread_count_as_it_found_it():
    before = torch.get_num_threads()
    report = run_bench(
        "resnet20", device="cpu", batch=1, warmup=0, iters=1, threads=1, progress=Progress(io.StringIO())
    )
    assert report.threads == 1
    assert torch.get_num_threads() == before


def test_table_states_the_settings_and_the_ratio(cli):
    result = cli("bench", "resnet18", "--device", "cpu", "--amp", "bf16", "--channels-last", "--vs", "timm", *QUICK)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("resnet18 on cpu (") and lines[0].endswith(", 1 thread)")
    assert lines[1] == (
        "batch 2 x 3x64x64, bf16, channels-last, eager; median of 3 timed steps after 1 warm-up, archspec and "
        "timm taking turns"
    )
    assert any(line.startswith("archspec resnet18") and "inference" in line for line in lines)
    assert any(line.startswith("timm resnet18") for line in lines)
    assert any(line.startswith("archspec / timm: inference ") and line.count("x") >= 1 for line in lines)


def test_features_only_backbone_benchmarks_a_training_step(cli):
    result = cli(
        "bench",
        "resnet20",
        "--set",
        "head.features=[2,3]",
        "--device",
        "cpu",
        "--train",
        "--format",
        "json",
        "--batch",
        "2",
        "--warmup",
        "0",
        "--iters",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["results"]["archspec"]) == {"inference", "train"}


# torchvision's RegNets compute their widths with tensors and are built for real: the fast tier builds one of
# them, the slow tier every one.
_PEER_CASES = [
    (library, name)
    if not name.startswith("regnet_") or name == "regnet_x_400mf"
    else pytest.param(library, name, marks=pytest.mark.slow)
    for library in PEERS
    for name in PEERS[library]
]


@pytest.mark.parametrize(("library", "name"), _PEER_CASES)
def test_every_listed_peer_is_the_stock_spec_of_that_name_with_equal_parameters(library, name):
    assert peer_name(archspec.load_plan(name), library) == name
    if name == "regnet_y_128gf":
        return  # 645M parameters: its count is pinned against torchvision's metadata in tests/test_regnet.py
    # Shapes only where the constructor allows it (the meta device).
    device = "cpu" if name.startswith("regnet_") else "meta"
    peer = build_library_model(ModelRef(library, name), device)
    assert sum(p.numel() for p in peer.parameters()) == archspec.count(name).params, (library, name)


def test_every_stock_spec_pinned_to_torchvision_is_its_peer():
    """`--vs torchvision` finds every stock spec whose parity with torchvision's model of that name is tested."""
    assert set(PEERS["torchvision"]) == set(TORCHVISION_ARCHS) | set(REGNETS) | set(CONVNEXTS)


def test_a_renamed_copy_of_a_stock_spec_finds_its_peer(write):
    path = write("mynet.yaml", "extends: resnet50\nname: mynet\ndescription: the same network under another name\n")
    assert peer_name(archspec.load_plan(path), "torchvision") == "resnet50"


def test_the_peer_is_found_at_another_input_size():
    assert peer_name(archspec.load_plan("vgg16", input_size=96), "torchvision") == "vgg16"


def test_a_modified_spec_has_no_peer(cli):
    result = cli("bench", "resnet50", "--set", "stages.2.depth=7", "--device", "cpu", "--vs", "torchvision")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "--vs torchvision: vs: this spec differs from torchvision's resnet50 in stages.2.depth; "
        "bench the unmodified stock spec, or name a model with --vs torchvision:NAME"
    )
    assert "Traceback" not in result.output


def test_cifar_resnets_have_no_timm_peer():
    with pytest.raises(SpecError, match="timm ships no model with the architecture of resnet20"):
        peer_name(archspec.load_plan("resnet20"), "timm")


def test_fp16_on_the_cpu_is_a_one_line_error(cli):
    result = cli("bench", "resnet20", "--device", "cpu", "--amp", "fp16")
    assert result.exit_code == 1
    assert result.stderr.strip() == "--amp fp16: amp: float16 autocast needs CUDA; on the CPU use --amp bf16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a CUDA device here")
def test_cuda_without_a_gpu_is_a_one_line_error(cli):
    result = cli("bench", "resnet20", "--device", "cuda")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("--device: device: CUDA was asked for, but torch sees no CUDA device here")


def test_an_unknown_peer_library_is_a_usage_error(cli):
    result = cli("bench", "resnet50", "--vs", "keras")
    assert result.exit_code == 2
    assert "torchvision" in result.stderr and "timm" in result.stderr


def test_summary_markdown_has_a_row_per_spec_and_mode_with_the_ratio(resnet18_vs_torchvision):
    report = json.loads(resnet18_vs_torchvision.stdout)
    text = bench_markdown(
        [BenchResult.from_json(report), BenchResult.from_json({**report, "spec": "other", "compile": True})]
    )
    lines = text.splitlines()
    assert lines[0].startswith(f"Device: {report['device_name']} (cpu, torch ")
    assert lines[2] == (
        "| spec | mode | settings | batch | archspec images/s | torchvision images/s | archspec / torchvision | "
        "archspec peak memory |"
    )
    rows = [line for line in lines if line.startswith(("| resnet18 ", "| other "))]
    assert len(rows) == 4
    assert f"| {report['vs']['torchvision']['train_throughput_ratio']:.3f} |" in rows[1]
    assert "float32, channels-first, compiled" in rows[2]


def _gpu_script(*args):
    env = {**os.environ, "PYTHON": sys.executable, "RESULTS": "", "OUT": ""}
    env.pop("RESULTS")
    env.pop("OUT")
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a CUDA device here")
def test_gpu_script_skips_cleanly_without_cuda():
    result = _gpu_script()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        "gpu.sh: no CUDA device here: skipping the CUDA tests and the GPU benchmarks (run with --smoke to test "
        "this script on the CPU)"
    )


@pytest.mark.slow
def test_gpu_script_smoke_run_on_the_cpu_prints_the_markdown_table():
    result = _gpu_script("--smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| resnet18 |")]
    assert [row.split(" | ")[1] for row in rows] == ["inference", "train"]
    assert all("bf16, channels-last, eager" in row for row in rows)


@CUDA
@pytest.mark.cuda
def test_cuda_bench_reports_peak_memory_and_the_ratio_with_bf16_channels_last(cli):
    result = cli(
        "bench",
        "resnet18",
        "--device",
        "cuda",
        "--train",
        "--amp",
        "bf16",
        "--channels-last",
        "--vs",
        "torchvision",
        "--batch",
        "32",
        "--iters",
        "5",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    weights = archspec.count("resnet18").params * 4
    for model in ("archspec", "torchvision"):
        inference, train = report["results"][model]["inference"], report["results"][model]["train"]
        # The weights at least; training adds gradients and momentum (3x the weights) and activations.
        assert weights < inference["peak_memory_bytes"] < train["peak_memory_bytes"]
        assert train["peak_memory_bytes"] > 3 * weights
    assert report["device_name"] == torch.cuda.get_device_name(0)
    assert report["vs"]["torchvision"]["throughput_ratio"] > 0


@CUDA
@pytest.mark.cuda
def test_cuda_bench_fp16_training_uses_a_gradient_scaler_and_finishes(cli):
    result = cli(
        "bench",
        "resnet18",
        "--device",
        "cuda",
        "--train",
        "--amp",
        "fp16",
        "--batch",
        "16",
        "--iters",
        "3",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["amp"] == "fp16"


@pytest.mark.skipif(
    os.environ.get("ARCHSPEC_COMPILE") != "1",
    reason="set ARCHSPEC_COMPILE=1: torch.compile needs a C++ compiler and takes minutes on a small CPU",
)
@pytest.mark.slow
def test_compiled_bench_runs_and_says_so(cli):
    result = cli(
        "bench",
        "resnet20",
        "--device",
        "cpu",
        "--compile",
        "--batch",
        "2",
        "--warmup",
        "1",
        "--iters",
        "2",
        "--threads",
        "1",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["compile"] is True and report["warmup"] == 2
