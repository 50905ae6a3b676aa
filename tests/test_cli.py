"""The CLI as a user drives it: exit codes, what goes to stdout and stderr, the report contents."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
import yaml
from conftest import ROOT, STOCK
from fvcore.nn import FlopCountAnalysis

import archspec


def test_build_prints_name_device_parameters_and_output_shape(cli):
    result = cli("build", ROOT / "specs" / "resnet20.yaml", "--device", "cpu", "--batch", "3")
    assert result.exit_code == 0, result.stderr
    assert "resnet20: 20 layers, 269,722 parameters" in result.stdout
    assert "device: cpu" in result.stdout
    assert "-> output 3x10" in result.stdout
    for stage in ("stem", "stage1", "stage2", "stage3", "head", "total"):
        assert stage in result.stdout
    assert "building resnet20" in result.stderr


def test_build_json_has_the_stage_rows(cli):
    result = cli("build", "resnet18", "--device", "cpu", "--format", "json")
    report = json.loads(result.stdout)
    assert report["params"] == 11_689_512
    assert report["output_shape"] == [1, 1000]
    assert [row["stage"] for row in report["stages"]] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert report["stages"][2]["channels"] == "64 -> 128" and report["stages"][2]["stride"] == 2
    assert report["stages"][2]["output"] == "28x28"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no CUDA")
def test_build_on_cuda_without_cuda_is_a_clear_error(cli):
    result = cli("build", "resnet18", "--device", "cuda")
    assert result.exit_code == 1
    assert "CUDA was asked for, but torch sees no CUDA device here" in result.stderr
    assert "Traceback" not in result.output


def test_build_out_writes_a_checkpoint_that_rebuilds_the_same_model(cli, tmp_path):
    out = tmp_path / "r20.pt"
    result = cli("build", "resnet20", "--device", "cpu", "--out", out, "--set", "head.num_classes=7")
    assert result.exit_code == 0, result.stderr
    model = archspec.load_checkpoint(out, device="cpu").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    payload = torch.load(out, weights_only=True)
    assert payload["spec"]["head"]["num_classes"] == 7
    rebuilt = archspec.load_checkpoint(out, device="cpu").eval()
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_build_out_never_overwrites_without_force(cli, tmp_path):
    out = tmp_path / "keep.pt"
    out.write_bytes(b"precious")
    result = cli("build", "resnet20", "--device", "cpu", "--out", out)
    assert result.exit_code == 1
    assert "file exists; pass --force to overwrite it" in result.stderr
    assert out.read_bytes() == b"precious"
    assert cli("build", "resnet20", "--device", "cpu", "--out", out, "--force").exit_code == 0
    assert out.read_bytes() != b"precious"


def test_build_out_with_force_never_replaces_the_spec_or_the_weights_it_reads(cli, write, tmp_path):
    text = "extends: resnet20\nhead: {num_classes: 3}\n"
    spec = write("mine.yaml", text)
    result = cli("build", spec, "--device", "cpu", "--out", spec, "--force")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().endswith(
        f"{spec}: --out: is the spec this command reads; write to another file (--force replaces outputs, not inputs)"
    )
    assert spec.read_text() == text
    checkpoint = tmp_path / "mine.pt"
    assert cli("build", spec, "--device", "cpu", "--out", checkpoint).exit_code == 0
    saved = checkpoint.read_bytes()
    result = cli("build", spec, "--device", "cpu", "--weights", checkpoint, "--out", checkpoint, "--force")
    assert result.exit_code == 1
    assert "--out: is the weights file this command reads" in result.stderr
    assert checkpoint.read_bytes() == saved


def test_validate_exits_zero_for_valid_specs_and_one_with_located_errors(cli, write):
    good = write("good.yaml", "stages:\n  - {depth: 2, width: 64}\n")
    bad = write("bad.yaml", "block: basic\nstages:\n  - {depth: 2, width: 64, strde: 2}\n")
    ok = cli("validate", good, "resnet50")
    assert ok.exit_code == 0
    assert "ok (good: " in ok.stdout and "ok (resnet50: 50 layers" in ok.stdout
    result = cli("validate", good, bad)
    assert result.exit_code == 1
    assert f"{bad}:3:27: stages.0.strde: unknown key `strde`; did you mean `stride`?" in result.stderr


def test_list_shows_every_stock_spec(cli):
    result = cli("list", "--format", "json")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == STOCK
    resnet50 = next(r for r in rows if r["name"] == "resnet50")
    assert resnet50["params"] == 25_557_032 and resnet50["layers"] == 50


def test_show_prints_the_resolved_spec_that_validates_to_the_same_spec(cli, tmp_path):
    result = cli("show", "resnet101", "--set", "head.num_classes=10")
    shown = yaml.safe_load(result.stdout)
    assert "extends" not in shown
    assert shown["block"] == "bottleneck" and shown["stages"][2]["depth"] == 23 and shown["head"]["num_classes"] == 10
    path = tmp_path / "shown.yaml"
    path.write_text(result.stdout)
    again = archspec.load_spec(path)
    assert again == archspec.load_spec("resnet101", overrides=["head.num_classes=10"])


def test_schema_command_prints_the_committed_schema(cli):
    result = cli("schema")
    assert result.stdout == (ROOT / "docs" / "archspec.schema.json").read_text()


def test_stock_specs_reference_the_schema_for_editors():
    for path in (ROOT / "specs").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../docs/archspec.schema.json\n"), path


@pytest.mark.slow
def test_flops_resnet152_vs_vgg19_matches_fvcore_on_torchvisions_model(cli):
    result = cli("flops", ROOT / "specs" / "resnet152.yaml", "--vs", "vgg19", "--format", "json")
    rows = json.loads(result.stdout)
    row = rows[0]
    reference = FlopCountAnalysis(torchvision.models.resnet152().eval(), torch.zeros(1, 3, 224, 224))
    reference.unsupported_ops_warnings(False)
    assert row["name"] == "resnet152" and row["layers"] == 152
    assert row["params"] == 60_192_808
    assert row["flops"] == reference.total()
    assert set(row) >= {"name", "layers", "params", "flops", "macs", "flops_by_op", "vs"}
    assert row["vs"]["vgg19"]["params_ratio"] == pytest.approx(60_192_808 / 143_667_240)
    assert rows[1]["name"] == "vgg19" and rows[1]["baseline"] is True
    assert row["vs"]["vgg19"]["flops_ratio"] == pytest.approx(row["flops"] / rows[1]["flops"])


def test_flops_table_uses_human_units_and_names_its_convention(cli):
    result = cli("flops", "resnet152", "--vs", "vgg19")
    assert result.exit_code == 0
    line = next(row for row in result.stdout.splitlines() if row.startswith("resnet152"))
    assert "60.19M" in line and "11.56G" in line and "0.42x" in line and "11.3G" in line
    assert "fvcore's convention" in result.stdout


def test_flops_csv_has_exact_integers_and_by_op_columns(cli):
    result = cli("flops", "resnet50", "--format", "csv", "--by-op")
    header, first = result.stdout.splitlines()[:2]
    assert "batch_norm" in header.split(",")
    assert "25557032" in first.split(",") and "4111512576" in first.split(",")


def test_flops_markdown_and_size_and_set(cli):
    result = cli("flops", "resnet50", "--size", "112x160", "--set", "head.num_classes=10", "--format", "markdown")
    assert result.stdout.startswith("| name |")
    expected = archspec.count("resnet50", input_size=(112, 160), overrides=["head.num_classes=10"])
    json_rows = json.loads(
        cli("flops", "resnet50", "--size", "112x160", "--set", "head.num_classes=10", "--format", "json").stdout
    )
    assert json_rows[0]["flops"] == expected.flops and json_rows[0]["input_size"] == [112, 160]


def test_flops_with_fvcore_counter_agrees_with_analytic(cli):
    analytic = json.loads(cli("flops", "resnet18", "--vs", "resnet20", "--format", "json").stdout)
    measured = json.loads(
        cli("flops", "resnet18", "--vs", "resnet20", "--counter", "fvcore", "--format", "json").stdout
    )
    assert [r["flops_by_op"] for r in analytic] == [r["flops_by_op"] for r in measured]


def test_bad_size_is_a_usage_error(cli):
    result = cli("flops", "resnet50", "--size", "big")
    assert result.exit_code == 2
    assert "expected a positive size" in result.stderr


def test_unknown_spec_name_lists_the_stock_specs(cli):
    result = cli("flops", "resnet51")
    assert result.exit_code == 1
    assert "no spec file or stock spec named 'resnet51'" in result.stderr and "resnet50" in result.stderr


def test_python_dash_m_archspec_works():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "archspec", "validate", "resnet18"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and "resnet18: ok" in result.stdout
