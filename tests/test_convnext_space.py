"""The ConvNeXt design space (specs/spaces/convnext.yaml) and fitting ConvNeXt to a budget: drawn and fitted
networks stay ConvNeXt-shaped (the first stage as wide as the stem, so no layer opens it) and meet their
targets, counted analytically."""

from __future__ import annotations

import json
import re

import yaml
from conftest import ROOT

import archspec
from archspec.plan.load import load_plan
from archspec.space.fit import fit

SPACE = ROOT / "specs" / "spaces" / "convnext.yaml"


def _opens_with_a_layer_of_its_own(spec: str) -> bool:
    """Whether the first stage starts with a downsampling layer (a second row besides its blocks)."""
    stage1 = next(section for section in load_plan(spec).sections if section.name == "stage1")
    return len(stage1.ops) > 1


def test_the_space_samples_valid_convnexts_inside_its_compute_regime(cli, tmp_path):
    out = tmp_path / "convnext"
    result = cli("sample", SPACE, "-n", "5", "--seed", "3", "--out", out, "--jobs", "1")
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("convnext-*.yaml"))
    assert len(files) == 5
    records = {row["file"]: row for row in json.loads((out / "samples.json").read_text())["samples"]}
    for path in files:
        spec = archspec.load_spec(str(path))
        counts = archspec.count(str(path))
        assert 4e9 <= counts.macs <= 5e9, path.name
        assert records[path.name]["macs"] == counts.macs
        widths = [stage.width for stage in spec.stages]
        assert widths[0] == spec.stem.width == 96 and widths[1:] == sorted(widths[1:]), path.name
        assert all(width % 32 == 0 for width in widths)
        assert not _opens_with_a_layer_of_its_own(str(path)), path.name


def test_convnext_tiny_lies_inside_the_space():
    space = yaml.safe_load(SPACE.read_text())
    tiny = archspec.load_spec("convnext_tiny")
    low, high = (float(end.rstrip("G")) * 1e9 for end in space["constraints"]["macs"])
    assert low <= archspec.count("convnext_tiny").macs <= high
    assert space["stem"]["width"] == tiny.stem.width and space["block"] == tiny.block.type
    for drawn, stage in zip(space["stages"], tiny.stages, strict=True):
        depth, width = drawn["depth"]["range"], drawn["width"]
        assert depth[0] <= stage.depth <= depth[1]
        if isinstance(width, dict):
            ends = width["log_range"]
            assert ends[0] <= stage.width <= ends[1] and stage.width % width["multiple_of"] == 0
        else:
            assert width == stage.width


def test_fitting_convnext_tiny_to_2_gflops_keeps_the_stem_as_wide_as_the_first_stage(cli, tmp_path):
    result = fit("convnext_tiny", flops=2e9)
    assert abs(result.new_flops / 2e9 - 1) <= 0.02
    out = tmp_path / "convnext_2g.yaml"
    written = cli("fit", "convnext_tiny", "--flops", "2G", "--out", out)
    assert written.exit_code == 0, written.output
    spec = archspec.load_spec(str(out))
    assert spec.stem.width == spec.stages[0].width
    assert [stage.width for stage in spec.stages] == list(result.new_widths)
    assert archspec.count(str(out)).flops == result.new_flops
    assert not _opens_with_a_layer_of_its_own(str(out))


def test_a_basic_resnet_keeps_its_stem_and_first_stage_at_one_width_when_fitted():
    # Apart, resnet18's first block would need a projection shortcut that the network does not have.
    for target in (0.5e9, 4e9):
        result = fit("resnet18", flops=target)
        assert abs(result.new_flops / target - 1) <= 0.02
        spec = yaml.safe_load(result.text)
        assert spec["stem"]["width"] == spec["stages"][0]["width"], target


def test_the_design_spaces_doc_shows_the_convnext_space_as_it_is():
    text = (ROOT / "docs" / "design-spaces.md").read_text()
    shown = re.search(r"<!-- file: specs/spaces/convnext.yaml -->\n```yaml\n(.*?)```", text, re.S)
    assert shown is not None and shown.group(1) == SPACE.read_text()
