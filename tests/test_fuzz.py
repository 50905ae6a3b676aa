"""Fuzzing the loader: whatever the input, the only exception is archspec's own SpecError.

Four sources of input: random text and bytes, random nested data dumped as YAML,
mappings built from the schema's own keys with random values, and stock specs
mutated character by character and value by value; then design spaces (mutated,
loaded and sampled), samples.json files (mutated, read back) and random command
lines of sample, fit and plot-samples. Each goes through
`archspec.api.load_plan` (parse, `extends`, validation, plan) and the analytic
counter, and every problem must print as one `FILE:LINE:COL: path: message` line.

The fast tier runs 1,640 examples in all (the random command lines, 250 more, are in the slow
tier). For a longer run set ARCHSPEC_FUZZ_EXAMPLES
(examples per test), e.g. `ARCHSPEC_FUZZ_EXAMPLES=12500 pytest tests/test_fuzz.py`
for 50,000; docs/errors.md records such a run.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from archspec.counting.analytic import complexity
from archspec.errors import SpecError, printable
from archspec.lang.schema import Head, Input, Spec, Stage, Stem
from archspec.lang.sources import stock_dir, stock_names
from archspec.plan import load_plan

_LONG_RUN = int(os.environ.get("ARCHSPEC_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int):
    """`examples` in CI; ARCHSPEC_FUZZ_EXAMPLES per test for a long run."""
    return settings(
        max_examples=_LONG_RUN or examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# One folder for the whole module: hypothesis forbids function-scoped fixtures in @given tests.
_FOLDER = Path(tempfile.mkdtemp(prefix="archspec-fuzz-"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)
STOCK_TEXT = {name: (stock_dir() / f"{name}.yaml").read_text(encoding="utf-8") for name in stock_names()}


def assert_only_spec_errors(source) -> None:
    """Load `source` (bytes or text for a file, or a mapping) to a plan and count it; only SpecError may escape."""
    if isinstance(source, (bytes, str)):
        path = _FOLDER / "fuzz.yaml"
        path.write_bytes(source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source)
        target = str(path)
    else:
        target = source
    try:
        complexity(load_plan(target))
        event("planned")  # see `pytest --hypothesis-show-statistics`
    except SpecError as exc:
        assert exc.problems
        event("refused")
        for problem in exc.problems:
            assert_one_located_line(problem, from_file=not isinstance(source, dict))


def assert_one_located_line(problem, from_file: bool) -> None:
    text = str(problem)
    assert "\n" not in text and "\r" not in text, text
    assert text.startswith(printable(f"{problem.mark}: {problem.path or '(document)'}: ")), text
    assert problem.message.strip(), text
    if from_file:
        # Everything here comes from a YAML file (the fuzzed one or a stock parent): lines are known.
        assert problem.mark.line is not None and problem.mark.column is not None, text
    else:
        assert text.startswith("<mapping>: ") or problem.mark.line is not None, text
    assert len(text) < 2000, text[:200]


# --- 1. random text and bytes --------------------------------------------------------------

YAML_CHARS = [*" \n\t:-[]{},&*!|>'\"#%@`?~.0123456789abcdeonsxyzE_+", "stages", "depth", "width", "<<", "!!"]


@fuzz_settings(300)
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.lists(st.sampled_from(YAML_CHARS), max_size=120).map("".join),
    )
)
def test_random_text_only_raises_spec_errors(text):
    assert_only_spec_errors(text)


# --- 2. random nested data dumped as YAML ---------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
nested = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.booleans()), children, max_size=5)
    ),
    max_leaves=30,
)


@fuzz_settings(200)
@given(nested, st.booleans())
def test_random_yaml_documents_only_raise_spec_errors(data, flow):
    assert_only_spec_errors(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))


# --- 3. the schema's own keys with random values --------------------------------------------

values = st.one_of(
    st.integers(min_value=-3, max_value=300),
    st.sampled_from([0, 1, 2, 3, 7, 8, 16, 32, 64, 224, 10**6, 10**30, 2**63]),
    st.floats(min_value=-2, max_value=2) | st.sampled_from([math.nan, math.inf, -math.inf]),
    st.booleans(),
    st.none(),
    st.sampled_from(
        ["basic", "bottleneck", "vgg", "A", "B", "C", "1x1", "3x3", "group", "none", "", "yes", "on", "1:30", "010"]
    ),
    st.lists(st.integers(min_value=-2, max_value=300), max_size=3),
    st.text(max_size=8),
)
small = st.sampled_from([1, 2, 3, 4, 8, 16, 24, 32, 48, 64, 128])
size = st.sampled_from([1, 2, 3, 7, 8, 16, 32, 64, 224, [32, 48], [1, 100]])
# Values a user might well write, field by field, so that many examples get through validation
# and exercise the plan; `values` (anything) is mixed in below for the rest.
PLAUSIBLE = {
    Input: {"channels": st.integers(1, 4), "size": size},
    Stem: {
        "type": st.sampled_from(["imagenet", "cifar", "deep", "none"]),
        "width": small,
        "inner_width": small,
        "pool": st.booleans() | st.none(),
    },
    Stage: {
        "depth": st.integers(1, 4),
        "width": small,
        "stride": st.sampled_from([1, 2, None]),
        "block": st.sampled_from(["basic", "bottleneck", "plain", "vgg", None]),
        "shortcut": st.sampled_from(["A", "B", "C", None]),
    },
    Head: {
        "num_classes": st.integers(1, 1000),
        "hidden": st.lists(small, max_size=2),
        "dropout": st.floats(0, 0.99),
        "pool": st.sampled_from(["avg", "max", "none"]),
        "pool_size": st.sampled_from([1, 2, 7, [2, 3]]),
        "features": st.lists(st.integers(0, 5), min_size=1, max_size=3),
    },
    Spec: {
        "name": st.text(min_size=1, max_size=10),
        "block": st.sampled_from(["basic", "bottleneck", "plain", "vgg"]),
        "preact": st.booleans(),
        "shortcut": st.sampled_from(["A", "B", "C"]),
        "stride_in": st.sampled_from(["1x1", "3x3"]),
        "groups": st.sampled_from([1, 2, 4, 32]),
        "width_per_group": st.sampled_from([1, 4, 64]),
        "expansion": st.sampled_from([1, 2, 4, None]),
        "avg_down": st.booleans(),
        "se": st.none()
        | st.fixed_dictionaries({}, optional={"reduction": st.integers(1, 16), "divisor": st.integers(1, 8)}),
        "drop_path": st.floats(0, 0.5),
        "output_stride": st.sampled_from([8, 16, 32, None]),
        "norm": st.sampled_from(["batch", "group", "none"]),
        "norm_groups": st.sampled_from([1, 2, 8, 32]),
        "activation": st.sampled_from(["relu", "silu", "gelu"]),
        "zero_init_residual": st.booleans(),
    },
}


def mostly(plausible, anything=values):
    """`plausible` nine times in ten, else `anything` (one_of alone would favour its later branches)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda usual: plausible if usual else anything)


def field_value(model, name: str):
    return mostly(PLAUSIBLE[model].get(name, values))


def section(model, required=(), typos=()):
    """Some of the model's fields (mostly plausible values), now and then a misspelt key."""
    fields = st.fixed_dictionaries(
        {name: field_value(model, name) for name in required},
        optional={name: field_value(model, name) for name in PLAUSIBLE[model] if name not in required},
    )
    typo = (
        mostly(st.just({}), st.dictionaries(st.sampled_from(typos), values, min_size=1, max_size=1))
        if typos
        else st.just({})
    )
    return st.tuples(fields, typo).map(lambda pair: {**pair[0], **pair[1]})


stages = st.lists(mostly(section(Stage, ("depth", "width"), ("strides", "blocks"))), min_size=1, max_size=5)
specs = st.tuples(
    section(Spec, (), ("shortcutt", "1", "")),
    st.fixed_dictionaries(
        {"stages": mostly(stages)},
        optional={
            "input": mostly(section(Input)),
            "stem": mostly(section(Stem, (), ("widht",))),
            "head": mostly(section(Head, (), ("num_class",))),
        },
    ),
).map(lambda pair: {**pair[0], **pair[1]})


@fuzz_settings(300)
@given(specs, st.booleans())
def test_schema_shaped_specs_only_raise_spec_errors(spec, flow):
    assert_only_spec_errors(yaml.safe_dump(spec, default_flow_style=flow, allow_unicode=True))
    assert_only_spec_errors(spec)


# --- 4. mutated stock specs -----------------------------------------------------------------

SNIPPETS = [
    "0",
    "-1",
    "yes",
    "2.0",
    "1:30",
    "010",
    ": ",
    "\n",
    "\t",
    "  ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "!x ",
    "#",
    "'",
    '"',
    "~",
    "<<: ",
    "\x00",
    "\x85",
    "é",
]


def mutate_text(draw, text: str) -> str:
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        length = draw(st.integers(min_value=1, max_value=12))
        piece = draw(st.sampled_from(SNIPPETS) | st.text(max_size=4))
        if kind == "delete":
            text = text[:where] + text[where + length :]
        elif kind == "insert":
            text = text[:where] + piece + text[where:]
        elif kind == "replace":
            text = text[:where] + piece + text[where + length :]
        else:
            text = text[:where] + text[where : where + length] * 2 + text[where + length :]
    return text


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def mutate_data(draw, data: dict) -> dict:
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        kind = draw(st.sampled_from(["swap", "drop", "insert", "wrap"]))
        if kind == "swap":
            parent[path[-1]] = draw(values)
        elif kind == "drop":
            del parent[path[-1]]
        elif kind == "insert" and isinstance(parent, dict):
            parent[
                draw(st.sampled_from([*sorted({k for m in PLAUSIBLE.values() for k in m}), "typo", "shortcutt"]))
            ] = draw(values)
        else:
            parent[path[-1]] = [parent[path[-1]]] if draw(st.booleans()) else {"x": parent[path[-1]]}
    return data


@fuzz_settings(400)
@given(st.sampled_from(sorted(STOCK_TEXT)), st.booleans(), st.data())
def test_mutated_stock_specs_only_raise_spec_errors(name, as_text, data):
    text = STOCK_TEXT[name]
    if as_text:
        mutated = mutate_text(data.draw, text)
    else:
        mutated = yaml.safe_dump(mutate_data(data.draw, yaml.safe_load(text)), sort_keys=False)
    assert_only_spec_errors(mutated)


def test_every_stock_spec_loads_cleanly_through_the_same_path():
    """The unmutated specs are the control: the fuzz harness itself raises nothing for them."""
    control = _FOLDER / "control"
    control.mkdir(exist_ok=True)
    for name, text in STOCK_TEXT.items():
        path = control / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        complexity(load_plan(str(path)))


# --- 5. the command line: random argv around valid specs ------------------------------------

_ARGV_SPECS = [
    "resnet20",
    "resnet50",
    "vgg11",
    "regnet_x_400mf",
    "preact_resnet110",
    "nope",
    "specs/",
    "x.yaml",
    "",
    "res\x00net",
    "²",
]
_ARGV_VALUES = [
    "224", "0", "-1", "2x", "32x48", "²", "٣", "x", "json", "csv", "markdown", "table", "xml", "analytic",
    "stages.0.depth=2", "stages.²=1", "head.num_classes=0", "name=$\\x{$", "{", "a=b\nc", "stages=[]",
    "input.size=[1, 1]", "block=regnet", "se={ratio: 0.25, of: input}", "stages.0.groups=4", "1" * 30, "resnet*",
    "vgg19", "resnet56",
]  # fmt: skip
_ARGV_OPTIONS = [
    "--set",
    "--size",
    "--vs",
    "--format",
    "--by-op",
    "--by-module",
    "--depth",
    "--out",
    "--force",
    "--help",
    "--version",
]
_COMMANDS = ["validate", "show", "flops", "diff", "list", "schema", "paper", "plot", "nosuch"]


@st.composite
def command_lines(draw):
    argv = [draw(st.sampled_from(_COMMANDS))]
    argv += draw(st.lists(st.sampled_from(_ARGV_SPECS), max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        option = draw(st.sampled_from(_ARGV_OPTIONS))
        argv.append(option)
        if option == "--out":
            argv.append(
                str(_FOLDER / draw(st.sampled_from(["out.svg", "out.png", "out.json", "sub/out.svg", "", "x" * 300])))
            )
        elif option not in ("--by-op", "--by-module", "--force", "--help", "--version") or draw(st.booleans()):
            argv.append(draw(st.sampled_from(_ARGV_VALUES)))
    return argv


@pytest.mark.slow
@fuzz_settings(250)
@given(command_lines())
def test_random_command_lines_end_in_a_message_never_an_internal_error(argv):
    from typer.testing import CliRunner

    from archspec.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code in (0, 1, 2), (argv, result.output[-500:])
    assert "Traceback" not in result.output and "internal error" not in result.output, (argv, result.output[-500:])
    if result.exit_code == 1:
        assert result.stderr.strip(), argv


# --- 6. design spaces and sample files --------------------------------------------------------------

SPACE_TEXT = {path.stem: path.read_text(encoding="utf-8") for path in sorted((stock_dir() / "spaces").glob("*.yaml"))}
SPACE_TEXT["cifar"] = """\
name: cifar
extends: resnet20
stages:
  count: {choice: [2, 3]}
  each:
    depth: {range: [1, 4]}
    width: {log_range: [8, 64], multiple_of: 8, order: non_decreasing}
    stride: {choice: [1, 2]}
groups: {choice: [1, 2]}
constraints:
  flops: [1M, 200M]
  params: [0, 1M]
"""
distributions = st.one_of(
    st.fixed_dictionaries({"choice": st.lists(values, max_size=4)}),
    st.fixed_dictionaries(
        {"range": st.lists(values, max_size=3)},
        optional={"step": values, "multiple_of": values, "shared": values, "order": values},
    ),
    st.fixed_dictionaries({"log_range": st.lists(values, max_size=3)}, optional={"step": values}),
)


def _space_paths(data):
    return [p for p in _paths(data) if p and not isinstance(_get(data, p), (dict, list))]


def _get(data, path):
    for part in path:
        data = data[part]
    return data


def assert_space_only_spec_errors(text: str) -> None:
    """Load a space from `text`, validate it and draw a few specs from it; only SpecError may escape."""
    from archspec.space.load import load_space
    from archspec.space.sample import sample

    path = _FOLDER / "space.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        space = load_space(str(path))
        sample(space, n=2, seed=0, max_draws=40)
        event("sampled")
    except SpecError as exc:
        assert exc.problems
        event("refused")
        for problem in exc.problems:
            text = str(problem)
            assert "\n" not in text and len(text) < 2000, text[:200]
            assert ".int:" not in text and ".float:" not in text, text


@fuzz_settings(150)
@given(st.sampled_from(sorted(SPACE_TEXT)), st.sampled_from(["text", "data", "distribution"]), st.data())
def test_mutated_spaces_only_raise_spec_errors(name, how, data):
    text = SPACE_TEXT[name]
    if how == "text":
        mutated = mutate_text(data.draw, text)
    else:
        loaded = yaml.safe_load(text)
        if how == "data":
            loaded = mutate_data(data.draw, loaded)
        else:
            leaves = _space_paths(loaded)
            target = data.draw(st.sampled_from(leaves))
            _get(loaded, target[:-1])[target[-1]] = data.draw(distributions)
        mutated = yaml.safe_dump(loaded, sort_keys=False)
    assert_space_only_spec_errors(mutated)


def _samples_json() -> str:
    from archspec.report.render import to_json
    from archspec.space.load import load_space
    from archspec.space.sample import sample

    path = _FOLDER / "cifar-space.yaml"
    path.write_text(SPACE_TEXT["cifar"], encoding="utf-8")
    return to_json(sample(load_space(str(path)), n=3, seed=0))


odd_json = st.sampled_from(
    ["null", '"12"', "{}", "[1, 2]", "-3", "1.5", "NaN", "Infinity", "-Infinity", "9" * 5000, "true", '""', "[]"]
)


@fuzz_settings(150)
@given(st.data())
def test_mutated_sample_files_only_raise_spec_errors(data):
    from archspec.space.write import read_samples

    text = SAMPLES_TEXT
    if data.draw(st.booleans()):
        text = mutate_text(data.draw, text)
    else:
        loaded = json.loads(text)
        for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
            paths = [p for p in _paths(loaded) if p]
            target = data.draw(st.sampled_from(paths))
            _get(loaded, target[:-1])[target[-1]] = "\x00ODD\x00"
        text = json.dumps(loaded)
        while "\x00ODD\x00" in text:
            text = text.replace('"\\u0000ODD\\u0000"', data.draw(odd_json), 1)
            if '"\\u0000ODD\\u0000"' not in text:
                break
    path = _FOLDER / "samples.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        run = read_samples(path)
        event("read")
        assert run.samples and all(
            isinstance(getattr(record, name), int) and getattr(record, name) >= 0
            for record in run.samples
            for name in ("params", "flops", "macs", "activations", "depth", "stages")
        )
    except SpecError as exc:
        event("refused")
        (problem,) = exc.problems
        assert "\n" not in str(problem) and len(str(problem)) < 2000


SAMPLES_TEXT = _samples_json()


# --- 7. the command line around spaces and sample files ---------------------------------------------

_SPACE_ARGS = [
    "specs/spaces/regnetx.yaml",
    "specs/spaces/anynetx_c.yaml",
    "resnet20",
    str(_FOLDER / "fuzz-space.yaml"),
    str(_FOLDER / "fuzz-samples"),
    str(_FOLDER / "fuzz-samples" / "samples.json"),
    str(_FOLDER / "fuzz-samples" / "samples.csv"),
    "/dev/null",
    "nope.yaml",
]
_SPACE_VALUES = [
    "0", "1", "2", "-1", "x", "1e400", "1e99999999", "2G", "40M", "0.5", "params", "flops", "depth",
    "stages.0.depth", "stages.regnet.w0", "stages.*.group_width", "nosuch", "constraints.flops=[0, 1]",
    "stages.regnet.bottleneck_ratio=30", "stages.regnet.depth={range: [1, 1.0e+40]}", "name=a/b",
]  # fmt: skip
_SPACE_OPTIONS = ["-n", "--seed", "--set", "--edf", "--flops", "--params", "--scale", "--name", "--force", "--vs"]


@st.composite
def space_command_lines(draw):
    command = draw(st.sampled_from(["sample", "fit", "plot-samples", "validate", "show"]))
    argv = [command, *draw(st.lists(st.sampled_from(_SPACE_ARGS), min_size=1, max_size=2))]
    for _ in range(draw(st.integers(0, 3))):
        option = draw(st.sampled_from(_SPACE_OPTIONS))
        argv.append(option)
        if option != "--force":
            argv.append(draw(st.sampled_from(_SPACE_VALUES)))
    if command == "sample":
        argv += ["--max-draws", "150", "--jobs", "1"]  # bounded, so that each example takes a moment
    if command in ("sample", "plot-samples") or draw(st.booleans()):
        suffix = {"sample": "", "plot-samples": ".png"}.get(command, ".yaml")
        argv += ["--out", str(_FOLDER / "fuzz-out" / f"o{draw(st.integers(0, 3))}{suffix}")]
    return argv


@fuzz_settings(60)
@given(space_command_lines())
def test_random_space_and_sample_command_lines_end_in_a_message(argv):
    from typer.testing import CliRunner

    from archspec.cli import app

    (_FOLDER / "fuzz-out").mkdir(exist_ok=True)
    samples = _FOLDER / "fuzz-samples"
    if not samples.exists():
        samples.mkdir()
        (samples / "samples.json").write_text(SAMPLES_TEXT, encoding="utf-8")
        (samples / "samples.csv").write_text("name\n", encoding="utf-8")
        (_FOLDER / "fuzz-space.yaml").write_text(SPACE_TEXT["cifar"], encoding="utf-8")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code in (0, 1, 2), (argv, result.output[-500:])
    assert "Traceback" not in result.output and "internal error" not in result.output, (argv, result.output[-500:])
    if result.exit_code:
        assert result.stderr.strip(), argv


# --- weights files -----------------------------------------------------------------------------------


def _weights_plan():
    return load_plan("resnet20")


_WEIGHTS_PLAN = _weights_plan()


_STATES: list[dict] = []


def _clean_state() -> dict:
    """resnet20's fresh state_dict, made on first use: collecting this module must not import torch."""
    if not _STATES:
        import torch

        from archspec.nn.builder import build_from_plan

        torch.manual_seed(0)
        _STATES.append(build_from_plan(_WEIGHTS_PLAN, "cpu").state_dict())
    return _STATES[0]


def assert_weights_only_spec_errors(path: Path) -> None:
    """Check and load `path` as --weights into resnet20: it loads, or one located SpecError line names it."""
    from archspec.nn.weights import load_weights

    try:
        load_weights(_WEIGHTS_PLAN, path, device="cpu")
    except SpecError as exc:
        for problem in exc.problems:
            line = str(problem)
            assert line.startswith(f"{path}: --weights: "), line
            assert "\n" not in line and not any(word in line for word in ("Error", "Pytorch", "Errno", "(document)"))
        event("refused")
    else:
        event("loaded")


@st.composite
def tampered_states(draw):
    """resnet20's state_dict with a few tensors replaced: other dtypes and shapes, stride-0 views, non-finite
    values, non-tensors, wrappers and prefixes."""
    import torch

    state = dict(_clean_state())
    keys = sorted(state)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        tensor = state[key]
        kind = draw(st.sampled_from(["dtype", "shape", "expand", "nan", "object", "drop", "scalar"]))
        if kind == "dtype":
            dtype = draw(st.sampled_from([torch.int64, torch.int8, torch.bool, torch.float16, torch.float64]))
            state[key] = tensor.to(dtype)
        elif kind == "shape":
            state[key] = torch.zeros([draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 4)))])
        elif kind == "expand" and tensor.dim() > 0:
            state[key] = torch.zeros(1).expand(*[max(n, 1) * draw(st.integers(1, 64)) for n in tensor.shape])
        elif kind == "nan" and tensor.is_floating_point() and tensor.numel():
            state[key] = tensor.clone().fill_(draw(st.sampled_from([math.nan, math.inf, -math.inf])))
        elif kind == "object":
            state[key] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())))
        elif kind == "drop":
            del state[key]
        else:
            state[key] = torch.tensor(draw(st.floats(allow_nan=True)))
    if draw(st.booleans()):
        state = {f"module.{key}": value for key, value in state.items()}
    wrapper = draw(st.sampled_from([None, "state_dict", "model", "other"]))
    return state if wrapper is None else {wrapper: state, "epoch": 3}


@fuzz_settings(40)
@given(tampered_states())
def test_tampered_weights_files_only_raise_spec_errors(state):
    import torch

    path = _FOLDER / "weights.pth"
    torch.save(state, path)
    assert_weights_only_spec_errors(path)


_WEIGHTS_BYTES = None


def _weights_bytes() -> bytes:
    global _WEIGHTS_BYTES
    if _WEIGHTS_BYTES is None:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(_clean_state(), buffer)
        _WEIGHTS_BYTES = buffer.getvalue()
    return _WEIGHTS_BYTES


@fuzz_settings(40)
@given(st.data())
def test_damaged_weights_files_only_raise_spec_errors(data):
    """A saved state_dict cut short, with bytes overwritten, or with random bytes in front."""
    whole = bytearray(_weights_bytes())
    how = data.draw(st.sampled_from(["cut", "flip", "prefix"]))
    if how == "cut":
        damaged = bytes(whole[: data.draw(st.integers(0, len(whole) - 1))])
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(whole) - 1))
            whole[at] = data.draw(st.integers(0, 255))
        damaged = bytes(whole)
    else:
        damaged = data.draw(st.binary(min_size=1, max_size=64)) + bytes(whole)
    path = _FOLDER / "damaged.pth"
    path.write_bytes(damaged)
    assert_weights_only_spec_errors(path)
