"""The files `archspec sample` writes: the same bytes whichever emitter renders them and wherever they are
rendered (worker processes or the main one), and written all or nothing per file."""

from __future__ import annotations

import os

import pytest
import yaml

from archspec.errors import SpecError
from archspec.files import write_folder
from archspec.space.load import load_space
from archspec.space.write import PlainDumper, choose_dumper, read_samples, spec_text

SPACE = """\
name: small bottlenecks
description: four bottleneck stages, each drawn on its own; a FLOPs bound.
input: {channels: 3, size: 64}
stem: {type: imagenet, width: 16}
block: bottleneck
stages:
  count: 4
  each:
    depth: {range: [1, 3]}
    width: {range: [8, 48], multiple_of: 8}
head: {num_classes: 10}
constraints:
  flops: [10M, 200M]
"""


def _pure_python_texts(space_file, out):
    """Each sample's spec as PyYAML's pure-Python emitter renders it, in the main process."""
    space = load_space(str(space_file))
    run = read_samples(out)
    return {record.file: spec_text(space, run, record, dumper=PlainDumper) for record in run.samples}


@pytest.mark.parametrize(("jobs", "name"), [("2", None), ("1", None), ("2", "1.5e"), ("2", "x")])
def test_sampled_files_are_the_bytes_of_the_pure_python_emitter(cli, write, tmp_path, jobs, name):
    # 1.5e-0001 reads as a float, so YAML quotes the name: the main process renders that spec itself.
    # A long folder name with accents: the description wraps at 100 columns and holds non-ASCII text.
    space = write("un dossier au nom très long, pour que la description dépasse cent colonnes/space.yaml", SPACE)
    out = tmp_path / "s"
    args = ["sample", space, "-n", "120", "--seed", "7", "--out", out, "--jobs", jobs]
    result = cli(*args, *(["--name", name] if name else []))
    assert result.exit_code == 0, result.output
    expected = _pure_python_texts(space, out)
    assert len(expected) == 120
    for file, text in expected.items():
        assert (out / file).read_bytes() == text.encode(), file
    if name == "1.5e":
        assert (out / "1.5e-0001.yaml").read_text().startswith("name: '1.5e-0001'\n")
    assert not [entry for entry in os.listdir(out) if entry.endswith(".tmp")]


def test_without_libyaml_the_pure_python_emitter_is_used_and_both_write_the_same_text():
    assert choose_dumper(False) is PlainDumper
    fast = choose_dumper(bool(getattr(yaml, "__with_libyaml__", False)))
    stage = {"depth": 1, "width": 8}
    data = {"name": "ünïcode-0001", "description": "wörds " * 30, "stages": [stage, stage], "head": {"n": 1}}
    texts = [
        yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
        for dumper in (PlainDumper, fast)
    ]
    assert texts[0] == texts[1]
    assert "&" not in texts[0] and "*" not in texts[0]  # shared values are written out, not aliased
    assert yaml.safe_load(texts[0]) == data


def test_writing_a_folder_refuses_before_any_file_is_moved_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "b.yaml").write_text("mine\n")
    files = [("a.yaml", b"a\n"), ("b.yaml", b"b\n"), ("c.yaml", b"c\n")]
    with pytest.raises(SpecError, match="exists"):
        write_folder(tmp_path, files, force=False)
    assert sorted(os.listdir(tmp_path)) == ["b.yaml"]
    assert (tmp_path / "b.yaml").read_text() == "mine\n"
    write_folder(tmp_path, files, force=True)
    assert sorted(os.listdir(tmp_path)) == ["a.yaml", "b.yaml", "c.yaml"]
    assert [(tmp_path / n).read_bytes() for n in ("a.yaml", "b.yaml", "c.yaml")] == [b"a\n", b"b\n", b"c\n"]
