"""`archspec plot`: parameters against FLOPs as PNG and SVG, one labelled point per spec and baseline."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

import archspec
from archspec.tools.plot import cost_points, draw

SPECS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
SVG = "{http://www.w3.org/2000/svg}"


def test_png_has_the_figure_size_every_label_and_both_kinds_of_marker(cli, tmp_path):
    out = tmp_path / "cost.png"
    result = cli("plot", *SPECS, "--vs", "vgg16", "--vs", "vgg19", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out}: 7 points ({', '.join(SPECS)}, vgg16, vgg19)"
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 825)  # 8 x 5.5 inches at 150 dpi
        assert image.text["Description"] == "points: " + ", ".join([*SPECS, "vgg16", "vgg19"])
        assert image.text["Title"] == "Parameters against FLOPs (baselines: vgg16, vgg19)"
        pixels = np.asarray(image.convert("RGB")).astype(int)
    blue = (abs(pixels - (31, 119, 180)).sum(axis=2) < 30).sum()  # matplotlib's tab:blue: the specs
    red = (abs(pixels - (214, 39, 40)).sum(axis=2) < 30).sum()  # tab:red: the baselines
    assert blue > 5 * 100 and red > 2 * 100


def test_svg_keeps_every_label_as_text(cli, tmp_path):
    out = tmp_path / "cost.svg"
    result = cli("plot", "resnet20", "resnet56", "resnet110", "--vs", "vgg19", "--out", out)
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert (root.get("width"), root.get("height")) == ("576pt", "396pt")
    texts = {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}
    assert {"resnet20", "resnet56", "resnet110", "vgg19", "spec", "baseline", "parameters (millions)"} <= texts
    assert "GFLOPs per image at each spec's input size (fvcore convention: 1 multiply-add = 1 flop)" in texts


def test_points_are_the_analytic_counts():
    points = cost_points(["resnet50"], ["vgg19"], input_size=112)
    assert [(p.name, p.baseline) for p in points] == [("resnet50", False), ("vgg19", True)]
    for point in points:
        counts = archspec.count(point.name, input_size=112)
        assert (point.params, point.flops, point.input_size) == (counts.params, counts.flops, [112, 112])


def test_axes_turn_logarithmic_only_for_a_wide_spread():
    wide = draw(cost_points(["resnet20"], ["vgg19"])).axes[0]
    assert (wide.get_xscale(), wide.get_yscale()) == ("log", "log")
    narrow = draw(cost_points(["resnet50"], ["resnet101"])).axes[0]
    assert (narrow.get_xscale(), narrow.get_yscale()) == ("linear", "linear")


def test_labels_of_close_points_do_not_overlap():
    # resnet34 and resnet50 sit close together at 224x224.
    figure = draw(cost_points(SPECS, ["vgg19"]))
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in figure.axes[0].texts]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_spec_that_is_also_a_baseline_is_drawn_once(cli, tmp_path):
    result = cli("plot", "resnet50", "vgg19", "--vs", "vgg19", "--out", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().endswith("2 points (resnet50, vgg19)")


def test_other_image_formats_are_refused(cli, tmp_path):
    result = cli("plot", "resnet50", "--out", tmp_path / "cost.jpg")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{tmp_path / 'cost.jpg'}: --out: give a file name ending in .png or .svg"


def test_an_existing_file_is_kept_without_force(cli, tmp_path):
    out = tmp_path / "cost.png"
    out.write_bytes(b"mine")
    assert cli("plot", "resnet50", "--out", out).exit_code == 1
    assert out.read_bytes() == b"mine"
    assert cli("plot", "resnet50", "--out", out, "--force").exit_code == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_a_bad_spec_is_reported_at_its_place(cli, tmp_path, write):
    spec = write("bad.yaml", "stages:\n  - {depth: 0, width: 64}\n")
    result = cli("plot", str(spec), "--out", tmp_path / "c.png")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{spec}:2:")
    assert not (tmp_path / "c.png").exists()


def test_without_matplotlib_the_message_names_the_extra(cli, tmp_path, monkeypatch):
    # An entry of None in sys.modules makes `import matplotlib` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli("plot", "resnet50", "--out", tmp_path / "c.png")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "archspec: archspec plot needs matplotlib, which is not installed; install it with: pip install "
        "'archspec[plot]'"
    )
    assert not (tmp_path / "c.png").exists()


def test_plot_does_not_import_torch(tmp_path):
    probe = (
        "import sys\nfrom archspec.cli import app\n"
        f"try:\n    app(['plot', 'resnet50', '--out', {str(tmp_path / 'c.svg')!r}], standalone_mode=False)\nexcept "
        "SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr[-2000:]
    assert (tmp_path / "c.svg").exists()


@pytest.mark.parametrize("name", ["vgg11", "resnet1202"])
def test_any_stock_spec_can_be_drawn(name, tmp_path):
    from archspec.tools.plot import plot_cost

    points = plot_cost([name], baselines=["vgg19"], out=tmp_path / "c.svg")
    assert points[0].name == name
