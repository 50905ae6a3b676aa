"""The files `archspec sample` writes: the same bytes whichever emitter renders them and wherever they are
rendered (worker processes or the main one), and written all or nothing per file."""

from __future__ import annotations

import glob
import os

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.errors import SpecError
from archspec.files import write_folder
from archspec.space.draw import draw
from archspec.space.emit import plain_yaml
from archspec.space.load import load_space
from archspec.space.write import PlainDumper, choose_dumper, read_samples, render_spec, spec_text

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
    return {record.file: spec_text(space, run.seed, record, dumper=PlainDumper) for record in run.samples}


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


def test_the_fast_dumper_writes_pyyamls_own_text_for_values_of_every_kind():
    # Text that must be quoted (a number, a boolean word, a colon, an empty string), floats of every form,
    # nested and empty collections, keys that are not text: the node graph made without the representer's
    # dispatch is the representer's own.
    fast = choose_dumper(bool(getattr(yaml, "__with_libyaml__", False)))
    data = {
        "name": "x-0001",
        "text": ["yes", "No", "null", "~", "1e3", "0x1F", "1_000", "", "a: b", "- a", "#", "'q'", 'say "hi"', "é"],
        "numbers": [0, -7, 10**20, 0.1, 1e20, -2.5e-8, float("inf"), float("-inf"), float("nan"), True, False, None],
        "nested": {"empty": {}, "none": [], "deep": [[1, [2, {"a": [3]}]], {"b": {"c": []}}]},
        "keys": {1: "one", None: "null", 2.5: "float", False: "bool"},
        "multi": "a\nb\n",
        "long": "word " * 40,
    }
    texts = [
        yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
        for dumper in (PlainDumper, fast)
    ]
    assert texts[0] == texts[1]


def test_indented_json_is_the_json_modules_own_text_for_results_of_every_kind():
    import dataclasses
    import enum
    import json

    from archspec.report.render import finite, plain, to_json

    @dataclasses.dataclass(frozen=True)
    class Row:
        name: str
        value: float
        parts: tuple[object, ...]
        extra: dict[object, object]

    class Code(enum.IntEnum):
        A = 1

    class Text(str):
        pass

    values = [
        {"a": 1, "b": [1.5, None, True, False, 'é\u2028"\\\n\t'], "c": {}, "d": [], "e": [[], [{}]]},
        Row("r", float("nan"), (1, (2, 3), Row("s", -0.0, (), {})), {"k": float("inf")}),
        [10**30, 5e-324, 1e300, -float("inf")],
        {1: "a key that is not text"},
        [Code.A, Text("a str subclass"), {Text("k"): 1}],
        "",
        0.1,
    ]
    for value in values:
        assert to_json(value) == json.dumps(finite(plain(value)), indent=2)


def _pyyaml(data):
    return yaml.dump(data, Dumper=PlainDumper, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)


_SPACES = [
    os.path.relpath(path, ROOT)
    for path in [
        *sorted(glob.glob(str(ROOT / "specs" / "spaces" / "*.yaml"))),
        str(ROOT / "benchmarks" / "resnet50_space.yaml"),
    ]
]


@pytest.mark.parametrize("space_file", _SPACES)
def test_every_stock_spaces_spec_files_are_written_directly_with_pyyamls_text(space_file, monkeypatch):
    # The spec files of every stock space take the direct path (no libyaml), and it writes PyYAML's bytes.
    monkeypatch.chdir(ROOT)
    space = load_space(space_file)
    for index in range(40):
        data = draw(space, 3, index).data
        expected = render_spec(space, 3, index, "sample-0001", data, dumper=PlainDumper)
        assert render_spec(space, 3, index, "sample-0001", data) == expected
        body = yaml.safe_load(expected)
        assert plain_yaml(body) == expected, (space_file, index)


# Words that are plain (most of them, so that most examples take the direct path), words YAML would quote or
# read as something else, and words around the wrapping width.
_PLAIN = st.sampled_from(["bottleneck", "3x3", "B", "(a/b.yaml),", "seed", "0;", "x" * 60, "y" * 99, "a-b", "_c"])
_ODD = st.sampled_from(
    [
        "yes",
        "No",
        "null",
        "~",
        "1e3",
        "0x1F",
        "1_000",
        "",
        "a: b",
        "- a",
        "#c",
        "a #c",
        "'q'",
        "é",
        "<<",
        "=",
        "1:20",
        "2001-12-14",
        ".5",
        "-a",
        "a,b",
        "[x]",
        "{x}",
        "a  b",
        " a",
        "a ",
        "a\nb",
        "on",
        "*x",
        "&x",
        "!x",
        "%x",
        "---",
    ]
)
_WORDS = st.one_of(_PLAIN, _PLAIN, _PLAIN, _PLAIN, _PLAIN, _PLAIN, _ODD)
_TEXT = st.lists(_WORDS, min_size=1, max_size=30).map(" ".join) | _WORDS
_SCALARS = (
    _TEXT
    | st.integers(-(10**20), 10**20)
    | st.sampled_from([0.25, 36.44, 1e17, 1e-05, 2.0, -0.0, 1e300])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
)
_KEYS = st.one_of(
    st.sampled_from(["depth", "width", "stages", "block", "k" * 40]),
    st.sampled_from(["depth", "width", "stages", "block", "k" * 40]),
    st.sampled_from(["yes", "null", "a b", "k" * 70, "3x3", "-k"]),
    st.integers(-3, 30),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=8))
def test_the_direct_text_is_pyyamls_or_it_is_not_written(data):
    # Whatever the data, the direct path writes PyYAML's own text or declines (None), never other text.
    text = plain_yaml(data)
    if text is not None:
        assert text == _pyyaml(data)


def test_the_direct_text_wraps_long_plain_text_where_pyyaml_does():
    # A word ending at column 100 keeps the next on its line; one ending past it sends the next to the next line.
    for filler in range(80, 100):
        for nested in (False, True):
            text = " ".join(["w" * filler, "a", "bb", "ccc", "d" * 30, "e"])
            data = {"name": "x", "stages": [{"note": text, "depth": [1]}] if nested else [1, {"k": [2]}], "d": text}
            assert plain_yaml(data) == _pyyaml(data)


def test_samples_csv_is_the_csv_modules_table_of_every_field_drawn_by_any_sample():
    # Fields that only some samples drew (an empty cell elsewhere), lists and mappings as JSON, booleans in
    # YAML's words, None, and text that the CSV format must quote.
    import csv
    import io
    import json

    from archspec.space.results import SampleRecord, SampleRun, SampleStats
    from archspec.space.write import samples_csv

    fields = [
        {"stages.0.depth": 3, "block": "bottleneck"},
        {"stages.0.depth": 4, "se": True, "widths": [64, 128], "extra": {"a": 1}},
        {"block": 'say "a, b"', "se": None, "note": "two\nlines"},
    ]
    records = [
        SampleRecord(f"s-{i:04d}", f"s-{i:04d}.yaml", 10 * i, f, 100 + i, 200 + i, 100 + i, 7, 20 + i, 4)
        for i, f in enumerate(fields, 1)
    ]
    run = SampleRun("s.yaml", "s", 0, 3, {}, records, SampleStats(30, 3, 0, 0, 27, {}, []))
    keys = ["stages.0.depth", "block", "se", "widths", "extra", "note"]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(["name", "file", "draw", *keys, "params", "flops", "macs", "activations", "layers", "stages"])
    for r in records:
        cells = []
        for key in keys:
            value = r.fields.get(key, "")
            if isinstance(value, (list, dict)):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = str(value).lower()
            cells.append(str(value) if key in r.fields else "")
        writer.writerow([r.name, r.file, r.draw, *cells, r.params, r.flops, r.macs, r.activations, r.depth, r.stages])
    assert samples_csv(run) == expected.getvalue()


@pytest.mark.parametrize("existing", [False, True])
def test_a_sample_stopped_while_its_files_are_written_leaves_nothing_new(tmp_path, existing):
    # The spec files are written (under a temporary folder) as the samples are kept: stopped then, by Ctrl-C
    # or an error, nothing appears and nothing the folder held changes.
    from archspec.space.sample import sample
    from archspec.space.write import SampleFiles

    space_file = tmp_path / "space.yaml"
    space_file.write_text(SPACE)
    space = load_space(str(space_file))
    out = tmp_path / "s"
    if existing:
        out.mkdir()
        (out / "small_bottlenecks-0001.yaml").write_text("mine\n")
    kept = []

    def keep(record, text):
        files.add(record, text)
        kept.append(record.name)
        if len(kept) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), SampleFiles(space, out, seed=0, force=existing) as files:
        sample(space, n=10, seed=0, jobs=1, keep=keep)
    assert sorted(os.listdir(tmp_path)) == ["s", "space.yaml"] if existing else ["space.yaml"]
    if existing:
        assert os.listdir(out) == ["small_bottlenecks-0001.yaml"]
        assert (out / "small_bottlenecks-0001.yaml").read_text() == "mine\n"


def test_a_signal_arriving_while_files_are_moved_into_place_waits_until_they_all_are():
    # Another thread is running (as torch's and a pool's are), so the system may hand SIGINT to it: Python still
    # runs the handler on the main thread, which must not be in the middle of the renames.
    import signal
    import threading
    import time

    from archspec.files import _signals_held

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), _signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append("renamed")
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
        other.join()
    assert done == ["renamed"]
