"""Design spaces: distributions drawn at the frequencies they promise, spaces checked with located messages,
`archspec sample` (deterministic, constraints kept, counts equal fvcore's), `archspec fit` and `plot-samples`."""

from __future__ import annotations

import json
import math
import random
import re
import shlex
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, fast_subset, run_without_torch

import archspec
from archspec.space.distributions import Choice, LogRange, Range
from archspec.space.draw import draw
from archspec.space.fit import fit
from archspec.space.load import load_space

REGNETX = ROOT / "specs" / "spaces" / "regnetx.yaml"
# Critical values of the chi-square distribution at p = 0.001 (upper tail), by degrees of freedom, from the
# standard table (e.g. NIST/SEMATECH e-Handbook, section 1.3.6.7.4). A correct sampler exceeds them once in
# a thousand runs; the draws here are seeded, so each test is the same run every time.
CHI2_999 = {2: 13.816, 3: 16.266, 5: 20.515, 6: 22.458, 9: 27.877, 31: 61.098}
# Kolmogorov-Smirnov: the one-sample critical value at alpha = 0.001 is 1.9495 / sqrt(n) for large n
# (Smirnov's asymptotic distribution, as tabulated in Massey 1951).
KS_999 = 1.9495

# A small space of CIFAR ResNets: fast to sample, fast for fvcore to check.
CIFAR_SPACE = """\
name: cifar
input: {channels: 3, size: 32}
stem: {type: cifar, width: 16}
block: basic
shortcut: B
stages:
  - {depth: {range: [1, 4]}, width: {choice: [16, 24, 32]}}
  - {depth: {range: [1, 4]}, width: {log_range: [16, 64], multiple_of: 8}}
  - {depth: {range: [1, 4]}, width: {log_range: [32, 128], multiple_of: 8}}
head: {num_classes: 10}
constraints:
  flops: [20M, 80M]
  params: [0, 1M]
"""


def chi_square(observed: Counter, expected: dict, n: int) -> float:
    """Pearson's statistic of `observed` counts against `expected` probabilities."""
    assert set(observed) <= set(expected), set(observed) - set(expected)
    return sum((observed.get(value, 0) - n * p) ** 2 / (n * p) for value, p in expected.items())


def ks_statistic(values: list[float], cdf) -> float:
    """The largest distance between the empirical CDF of `values` and `cdf`."""
    ordered = sorted(values)
    n = len(ordered)
    return max(max((i + 1) / n - cdf(x), cdf(x) - i / n) for i, x in enumerate(ordered))


def draws(distribution, n: int, seed: int = 0) -> list:
    sample = distribution.sampler()
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


# ---- distributions: each drawn at the frequency it promises ----


def test_a_choice_draws_each_value_equally_often():
    n = 12_000
    counts = Counter(draws(Choice.model_validate({"choice": [1, 2, 4, 8, 16, 32]}), n))
    expected = dict.fromkeys([1, 2, 4, 8, 16, 32], 1 / 6)
    assert chi_square(counts, expected, n) < CHI2_999[5]


def test_a_range_with_a_step_draws_each_grid_value_equally_often():
    n = 14_000
    values = draws(Range.model_validate({"range": [1.5, 3.0], "step": 0.25}), n)
    expected = dict.fromkeys([1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0], 1 / 7)
    assert chi_square(Counter(values), expected, n) < CHI2_999[6]


def test_an_integer_range_draws_every_integer_from_lo_to_hi():
    n = 10_000
    values = draws(Range.model_validate({"range": [1, 10]}), n)
    assert all(isinstance(v, int) for v in values)
    assert chi_square(Counter(values), dict.fromkeys(range(1, 11), 0.1), n) < CHI2_999[9]


def test_a_quantized_log_range_gives_each_multiple_its_log_interval_and_a_uniform_sampler_would_fail():
    n = 40_000
    values = draws(LogRange.model_validate({"log_range": [8, 256], "multiple_of": 8}), n)
    span = math.log(256 / 8)
    # A value takes the log-uniform mass of the interval that rounds to it (the ends take what lies beyond).
    expected = {v: (math.log(min(v + 4, 256)) - math.log(max(v - 4, 8))) / span for v in range(8, 257, 8)}
    assert abs(sum(expected.values()) - 1) < 1e-12
    assert chi_square(Counter(values), expected, n) < CHI2_999[31]
    uniform = dict.fromkeys(expected, 1 / 32)
    assert chi_square(Counter(values), uniform, n) > 100 * CHI2_999[31]


def test_a_real_log_range_passes_kolmogorov_smirnov_and_a_uniform_cdf_does_not():
    n = 20_000
    lo, hi = 1.5, 3.0
    values = draws(LogRange.model_validate({"log_range": [lo, hi]}), n)
    assert all(lo <= v <= hi for v in values)
    log_cdf = lambda x: math.log(x / lo) / math.log(hi / lo)  # noqa: E731
    assert ks_statistic(values, log_cdf) < KS_999 / math.sqrt(n)
    assert ks_statistic(values, lambda x: (x - lo) / (hi - lo)) > 3 * KS_999 / math.sqrt(n)


def test_a_real_range_passes_kolmogorov_smirnov():
    n = 20_000
    values = draws(Range.model_validate({"range": [2.0, 5.0]}), n)
    assert ks_statistic(values, lambda x: (x - 2.0) / 3.0) < KS_999 / math.sqrt(n)


def _space(write, text: str, name: str = "space.yaml"):
    return load_space(str(write(name, text)))


def test_order_keeps_every_ordered_triple_equally_likely_which_sorting_would_not(write):
    space = _space(
        write,
        "block: basic\nstages:\n  count: 3\n  each: {depth: 1, width: {choice: [8, 16, 24], order: non_decreasing}}\n",
    )
    n = 10_000
    triples = Counter(tuple(draw(space, 0, i).fields[f"stages.{s}.width"] for s in range(3)) for i in range(n))
    ordered = [(a, b, c) for a in (8, 16, 24) for b in (8, 16, 24) for c in (8, 16, 24) if a <= b <= c]
    assert set(triples) == set(ordered) and len(ordered) == 10
    assert chi_square(triples, dict.fromkeys(ordered, 1 / 10), n) < CHI2_999[9]
    # Sorting three independent draws would make (8, 16, 24) six times as likely as (8, 8, 8).
    assert 0.5 < triples[(8, 16, 24)] / triples[(8, 8, 8)] < 2


def test_shared_draws_one_value_for_every_stage_and_count_draws_the_number_of_stages(write):
    space = _space(
        write,
        "block: regnet\nstages:\n  count: {range: [2, 4]}\n"
        "  each: {depth: 1, width: 32, group_width: {choice: [1, 2, 4, 8], shared: true}}\n",
    )
    n = 6_000
    found = [draw(space, 0, i) for i in range(n)]
    for d in found[:200]:
        widths = {stage["group_width"] for stage in d.data["stages"]}
        assert widths == {d.fields["stages.*.group_width"]}
        assert len(d.data["stages"]) == d.fields["stages.count"]
    counts = Counter(d.fields["stages.count"] for d in found)
    assert chi_square(counts, dict.fromkeys([2, 3, 4], 1 / 3), n) < CHI2_999[2]


def test_a_draw_depends_on_the_seed_and_its_index_alone():
    space = load_space(str(REGNETX))
    forward = [draw(space, 7, i).fields for i in range(20)]
    backward = [draw(space, 7, i).fields for i in reversed(range(20))][::-1]
    assert forward == backward
    assert forward != [draw(space, 8, i).fields for i in range(20)]


# ---- a space is checked like a spec: every problem at its line ----

BAD_SPACES = [
    (
        "stages:\n  - {depth: {range: [5, 1]}, width: 8}\n",
        "2:21: stages.0.depth.range: the low end 5 is above the high end 1",
    ),
    (
        "stages:\n  - {depth: 1, width: {choice: []}}\n",
        "2:32: stages.0.width.choice: expected at least one value, got an empty list",
    ),
    (
        "stages:\n  - {depth: {rnage: [1, 5]}, width: {choice: [8, 16]}}\n",
        "2:14: stages.0.depth.rnage: unknown key `rnage`; did you mean `range`? (a distribution)",
    ),
    (
        "name: {choice: [a, b]}\nstages: [{depth: 1, width: 8}]\n",
        "1:7: name: cannot be drawn from a distribution: only numbers, names and true or false can be; "
        "this field is text",
    ),
    (
        "stem: {choice: [{type: cifar}]}\nstages: [{depth: 1, width: 8}]\n",
        "1:7: stem: cannot be drawn from a distribution: it is a group of settings; draw the fields inside it",
    ),
    (
        "block: {range: [1, 2]}\nstages: [{depth: 1, width: 8}]\n",
        "1:9: block.range: range draws numbers; this field takes one of its names: draw it with `choice`",
    ),
    (
        "block: {choice: [basic, bottlenek]}\nstages: [{depth: 1, width: 8}]\n",
        "1:25: block: got the text 'bottlenek'; expected one of "
        "'basic', 'bottleneck', 'plain', 'vgg', 'regnet', 'convnext', 'inverted_residual' or 'mbconv'",
    ),
    (
        "stages: [{depth: 1, width: {log_range: [8, 64], multiple_of: 100}}]\n",
        "1:62: stages.0.width.multiple_of: no multiple of 100 lies between 8 and 64",
    ),
    (
        "stages: [{depth: 1, width: 8}]\nconstraints: {flops: [4G, 1G]}\n",
        "2:22: constraints.flops: the low end 4G is above the high end 1G: no network can satisfy it",
    ),
    (
        "stages: [{depth: 1, width: 8}]\nconstraints: {flop: [1M, 4G]}\n",
        "2:15: constraints.flop: unknown key `flop`; did you mean `flops`?",
    ),
    (
        "stages: [{depth: 1, width: 8}]\nconstraints: {params: [1X, 4G]}\n",
        "2:23: constraints.params: expected a number such as 400M or 4G (units K, M, G, T), got '1X'",
    ),
    (
        "groups: {choice: [1, 2], shared: true}\nstages: [{depth: 1, width: 8}]\n",
        "1:26: groups.shared: `shared` ties a field across stages; this field is drawn once for the network",
    ),
]


@pytest.mark.parametrize("text,expected", BAD_SPACES, ids=[e.split(": ")[1] for _, e in BAD_SPACES])
def test_a_malformed_space_gets_one_located_line(cli, write, text, expected):
    path = write("bad.yaml", text)
    result = cli("validate", path)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{path}:{expected}"


def test_validate_names_a_space_and_what_it_draws(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = cli("validate", "specs/spaces/regnetx.yaml", "resnet50")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "specs/spaces/regnetx.yaml: ok (space regnetx: 5 distributions; constraints on macs, stages)",
        "resnet50: ok (resnet50: 50 layers, 25,557,032 parameters)",
    ]


def test_validate_refuses_a_space_none_of_whose_draws_is_a_valid_spec(cli, write):
    # The network's group_width shapes bottleneck and regnet blocks only: every draw over EfficientNet-B0 is
    # invalid, which a field-by-field check of the space cannot see.
    space = write(
        "all_invalid.yaml", "extends: efficientnet_b0\ngroup_width: 8\nstages:\n  0: {depth: {range: [1, 2]}}\n"
    )
    result = cli("validate", space)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"{space}:2:1: group_width: group_width shapes bottleneck and regnet blocks only; this spec also has mbconv "
        "blocks (none of the space's first 200 draws is a valid spec)"
    )
    # One valid draw is enough: VGG-11's five pools empty an 8x8 or a 16x16 input, not a 224x224 one.
    mixed = write("mixed.yaml", "extends: vgg11\ninput: {channels: 3, size: {choice: [8, 16, 224]}}\n")
    assert cli("validate", mixed).exit_code == 0
    empty = write("empty.yaml", "extends: vgg11\ninput: {channels: 3, size: {choice: [8, 16]}}\n")
    assert "(none of the space's first 200 draws is a valid spec)" in cli("validate", empty).stderr


# ---- archspec sample ----


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_sample_writes_specs_csv_and_json_and_the_same_seed_the_same_files(cli, write, tmp_path):
    space = write("cifar.yaml", CIFAR_SPACE)
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        result = cli("sample", space, "-n", "12", "--seed", seed, "--out", tmp_path / name, "--jobs", "1")
        assert result.exit_code == 0, result.output
        runs.append(_files(tmp_path / name))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert sorted(runs[0]) == [f"cifar-{i:04d}.yaml" for i in range(1, 13)] + ["samples.csv", "samples.json"]
    csv = runs[0]["samples.csv"].decode().splitlines()
    assert csv[0].startswith("name,file,draw,stages.0.depth,stages.0.width,")
    assert csv[0].endswith(",params,flops,macs,activations,layers,stages")
    assert len(csv) == 13


def test_every_sample_satisfies_the_constraints_when_archspec_flops_counts_its_file(cli, write, tmp_path):
    space = write("cifar.yaml", CIFAR_SPACE)
    assert cli("sample", space, "-n", "15", "--out", tmp_path / "s", "--jobs", "1").exit_code == 0
    run = json.loads((tmp_path / "s" / "samples.json").read_text())
    files = [tmp_path / "s" / record["file"] for record in run["samples"]]
    result = cli("flops", *files, "--format", "json")
    assert result.exit_code == 0, result.output
    counted = {row["name"]: row for row in json.loads(result.stdout) if not row["baseline"]}
    for record in run["samples"]:
        row = counted[record["name"]]
        assert (row["params"], row["flops"], row["macs"], row["activations"], row["layers"]) == (
            record["params"],
            record["flops"],
            record["macs"],
            record["activations"],
            record["depth"],
        )
        assert 20e6 <= row["flops"] <= 80e6 and row["params"] <= 1e6
    drawn = [record["fields"] for record in run["samples"]]
    assert len({json.dumps(fields) for fields in drawn}) == len(drawn)  # distinct


def test_recorded_counts_equal_fvcore_on_a_random_subset(cli, write, tmp_path):
    from archspec.nn.fvcore_count import fvcore_complexity

    space = write("cifar.yaml", CIFAR_SPACE)
    assert cli("sample", space, "-n", "20", "--seed", "5", "--out", tmp_path / "s", "--jobs", "1").exit_code == 0
    run = json.loads((tmp_path / "s" / "samples.json").read_text())
    for record in random.Random(0).sample(run["samples"], 3):
        reference = fvcore_complexity(archspec.load_plan(str(tmp_path / "s" / record["file"])))
        assert (reference.params, reference.flops, reference.macs, reference.activations) == (
            record["params"],
            record["flops"],
            record["macs"],
            record["activations"],
        )


def test_rejection_statistics_add_up_and_go_to_stderr_and_the_json(cli, write, tmp_path):
    space = write("cifar.yaml", CIFAR_SPACE)
    result = cli("sample", space, "-n", "10", "--out", tmp_path / "s", "--jobs", "1")
    stats = json.loads((tmp_path / "s" / "samples.json").read_text())["statistics"]
    assert stats["drawn"] == stats["accepted"] + stats["duplicates"] + stats["invalid"] + stats["refused"]
    assert stats["accepted"] == 10 and stats["refused"] > 0
    assert max(stats["refused_by"].values()) <= stats["refused"] <= sum(stats["refused_by"].values())
    by = ", ".join(f"{name} {count:,}" for name, count in stats["refused_by"].items() if count)
    line = f"archspec: drew {stats['drawn']:,} for 10 samples: {stats['refused']:,} outside the constraints ({by}), "
    assert line in result.stderr
    assert result.stdout.splitlines()[0].split() == ["quantity", "min", "median", "max"]


def test_invalid_draws_are_counted_by_the_field_at_fault(cli, write, tmp_path):
    # Width 24 is invalid with group width 16; the three depths at width 32 are the only valid specs.
    text = "block: regnet\nstages:\n  - {depth: {range: [1, 3]}, width: {choice: [24, 32]}, group_width: 16}\n"
    result = cli("sample", write("g.yaml", text), "-n", "3", "--out", tmp_path / "s", "--jobs", "1")
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "s" / "samples.json").read_text())["statistics"]
    assert stats["invalid_by"][0]["field"] == "stages.0.group_width"
    assert stats["invalid_by"][0]["example"].startswith("group width 16 does not divide the inner width 24")


def test_the_number_of_jobs_does_not_change_the_files(cli, write, tmp_path):
    space = write(
        "cifar.yaml", CIFAR_SPACE.replace("flops: [20M, 80M]", "flops: [10M, 200M]").replace("[0, 1M]", "[0, 2M]")
    )
    for jobs in ("1", "2"):
        result = cli("sample", space, "-n", "120", "--out", tmp_path / jobs, "--jobs", jobs)
        assert result.exit_code == 0, result.output
    assert _files(tmp_path / "1") == _files(tmp_path / "2")


def test_a_non_empty_folder_is_kept_unless_force(cli, write, tmp_path):
    space = write("cifar.yaml", CIFAR_SPACE)
    out = tmp_path / "s"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    result = cli("sample", space, "-n", "2", "--out", out, "--jobs", "1")
    assert result.exit_code == 1
    expected = (
        f"{out}: --out: the folder is not empty; pass --force to write the samples into it "
        "(files of the same names are replaced)"
    )
    assert result.stderr.strip() == expected
    assert cli("sample", space, "-n", "2", "--out", out, "--force", "--jobs", "1").exit_code == 0
    assert (out / "mine.txt").read_text() == "mine" and (out / "samples.json").exists()
    result = cli("sample", space, "-n", "2", "--out", out / "mine.txt", "--jobs", "1")
    assert result.stderr.strip() == f"{out / 'mine.txt'}: --out: is a file, not a folder"


def test_a_sample_name_must_be_a_safe_file_name(cli, write, tmp_path):
    result = cli("sample", write("cifar.yaml", CIFAR_SPACE), "--name", "../x", "--out", tmp_path / "s")
    assert result.exit_code == 2
    assert "--name ../x: name: a sample's name is a file name" in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_space_too_small_or_never_valid_says_so_where_the_fault_is(cli, write, tmp_path):
    few = write("few.yaml", "extends: resnet20\nname: few\nstages:\n  0: {depth: {choice: [1, 2]}}\n")
    result = cli("sample", few, "-n", "5", "--out", tmp_path / "few", "--jobs", "1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"{few}:1:1: (document): cannot give 5 distinct samples: the space holds 2 distinct specs at most"
    )
    bad = write("bad.yaml", "extends: resnet20\nstages:\n  0: {depth: {choice: [1, 2]}, groups: {choice: [2, 4]}}\n")
    result = cli("sample", bad, "-n", "3", "--out", tmp_path / "bad", "--jobs", "1")
    assert result.exit_code == 1
    assert re.fullmatch(
        rf"{re.escape(str(bad))}:3:32: stages\.0\.groups: groups shapes bottleneck and regnet blocks only; stage 1 has "
        r"basic blocks \(only 0 of 3 samples in \d+ draws, after all 4 distinct specs of the space were drawn: every "
        r"one is invalid\)",
        result.stderr.strip().splitlines()[-1],
    )
    assert not (tmp_path / "few").exists() and not (tmp_path / "bad").exists()


def test_a_plain_spec_is_refused_before_any_draw(cli, tmp_path):
    result = cli("sample", "resnet20", "-n", "2", "--out", tmp_path / "one")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "specs/resnet20.yaml:1:1: (document): cannot give 2 distinct samples: the space draws nothing, it is one spec"
    )
    assert not (tmp_path / "one").exists()


def test_a_constraint_no_draw_meets_stops_after_a_stated_number_of_draws(cli, write, tmp_path):
    # Real-valued widths: every draw is new, so only the rule for the first draws can stop it early.
    space = write(
        "never.yaml",
        "extends: resnet20\ndrop_path: {range: [0.0, 0.1]}\nconstraints:\n  stages: [5, 6]\n",
    )
    result = cli("sample", space, "-n", "3", "--out", tmp_path / "never", "--jobs", "1")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "only 0 of 3 samples in 10,000 draws, stopped as the first 10,000 draws kept none" in last, last
    assert not (tmp_path / "never").exists()


def test_when_the_draws_run_out_the_message_points_at_the_constraint(cli, write, tmp_path):
    space = write("cifar.yaml", CIFAR_SPACE.replace("flops: [20M, 80M]", "flops: [1G, 2G]"))
    result = cli("sample", space, "-n", "5", "--out", tmp_path / "s", "--max-draws", "300", "--jobs", "1")
    assert result.exit_code == 1
    assert re.fullmatch(
        rf"{re.escape(str(space))}:12:10: constraints\.flops: only 0 of 5 samples in 300 draws: "
        r"\d+ outside flops \[1G, 2G\], where the valid draws had [0-9.]+M to [0-9.]+M; "
        r"widen the constraint or the distributions, or allow more --max-draws",
        result.stderr.strip().splitlines()[-1],
    )
    assert not (tmp_path / "s").exists()


# ---- archspec fit ----

RESIDUAL = [name for name in archspec.list_specs() if not name.startswith("vgg")]
# One spec of each residual family in the fast tier; every residual stock spec in the slow tier.
FIT_FAST = {"resnet20", "resnet18", "resnet50", "regnet_y_400mf", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"}


@pytest.mark.parametrize("name", fast_subset(RESIDUAL, FIT_FAST))
def test_fit_reaches_every_target_from_a_quarter_to_four_times_for_every_residual_stock_spec(name):
    rng = random.Random(name)
    base = archspec.count(name).flops
    for factor in (0.25, 0.5, 2.0, 4.0, math.exp(rng.uniform(math.log(0.25), math.log(4)))):
        target = base * factor
        result = fit(name, flops=target)  # scaling depth and width together: no target in range is refused
        assert abs(result.new_flops / target - 1) <= 0.02, (name, factor, result.new_flops)


def test_fit_writes_extends_plus_the_changed_fields_and_the_file_counts_as_fitted(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "r50_2g.yaml"
    result = cli("fit", "resnet50", "--flops", "2G", "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("extends: resnet50\nname: resnet50_2gflops\n")
    assert set(__import__("yaml").safe_load(text)) == {"extends", "name", "description", "stem", "stages"}
    counted = archspec.count(str(out))
    assert abs(counted.flops / 2e9 - 1) <= 0.02
    assert f"archspec: resnet50_2gflops: {counted.flops:,} flops, {counted.params:,} params" in result.stderr


def test_fit_takes_a_parameter_target_and_both_targets_at_once():
    by_params = fit("resnet50", params=10e6)
    assert abs(by_params.new_params / 10e6 - 1) <= 0.02
    both = fit("regnet_x_400mf", flops=0.6e9, params=6e6)
    assert abs(both.new_flops / 0.6e9 - 1) <= 0.02 and abs(both.new_params / 6e6 - 1) <= 0.02


def test_fit_says_on_one_located_line_why_depth_alone_cannot_reach_a_target(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = cli("fit", "resnet50", "--flops", "500M", "--scale", "depth")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "specs/resnet50.yaml:9:3: stages: cannot bring resnet50 within 2% of 500M flops by scaling depth alone: "
        "the closest has 1.479G flops (+195.8%); try --scale width or both"
    )


def test_fit_refuses_a_target_it_cannot_read(cli):
    result = cli("fit", "resnet50", "--flops", "2 gigaflops")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "--flops 2 gigaflops: flops: expected a positive number with an optional K, M, G or T, like 2G"
    )


# ---- archspec plot-samples ----


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from typer.testing import CliRunner

    from archspec.cli import app

    folder = tmp_path_factory.mktemp("samples")
    space = folder / "cifar.yaml"
    space.write_text(CIFAR_SPACE)
    result = CliRunner().invoke(app, ["sample", str(space), "-n", "25", "--out", str(folder / "s"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return folder / "s" / "samples.json"


def test_plot_samples_draws_params_against_flops_with_labelled_references(cli, samples, tmp_path):
    from PIL import Image

    out = tmp_path / "scatter.png"
    result = cli("plot-samples", samples, "--vs", "resnet20", "--vs", "resnet32", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out}: 1 series (cifar (25 samples)); references: resnet20, resnet32"
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (960, 660)
        assert image.text["Title"] == "Parameters against FLOPs: cifar"


def test_plot_samples_draws_the_edf_of_a_drawn_field_as_svg_text(cli, samples, tmp_path):
    out = tmp_path / "edf.svg"
    result = cli("plot-samples", samples, samples.parent, "--edf", "stages.0.depth", "--out", out)
    assert result.exit_code == 0, result.output
    texts = {"".join(t.itertext()).strip() for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"Empirical distribution of stages.0.depth", "cumulative fraction of samples", "cifar (25 samples)"} <= texts


def test_plot_given_sample_files_draws_them_and_refuses_a_mix_with_specs(cli, samples, tmp_path):
    out = tmp_path / "scatter.svg"
    result = cli("plot", samples.parent, "--vs", "resnet20", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out}: 1 series (cifar (25 samples)); references: resnet20"
    texts = {"".join(t.itertext()).strip() for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"Parameters against FLOPs: cifar", "resnet20"} <= texts
    # A long path is shortened in a message (its middle elided), so the refusals are matched around the paths.
    refusals = {
        ("resnet20", samples): ("resnet20: SPEC: draw specs or sample files, not both (", "is a sample file);"),
        (samples, "--size", "64"): ("--size 64: size: applies to specs; the counts in ", "are fixed"),
        (samples.parent / "samples.csv",): (str(samples.parent)[:20], ": SAMPLES: the CSV is for spreadsheets;"),
    }
    for args, (start, middle) in refusals.items():
        result = cli("plot", *args, "--out", tmp_path / "x.png")
        assert result.exit_code == 2 and result.stderr.startswith(start) and middle in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_plot_samples_refuses_an_unknown_quantity_and_a_file_that_is_not_samples(cli, samples, tmp_path):
    result = cli("plot-samples", samples, "--edf", "speed", "--out", tmp_path / "x.png")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "--edf speed: edf: not a quantity of every samples file; choose one of params, flops,"
    )
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    result = cli("plot-samples", other, "--out", tmp_path / "x.png")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"{other}: (document): not a samples file written by archspec sample: expected a mapping, got a list"
    )


# ---- the speed-ups change no plan and no count ----


def _blocks(plan) -> list:
    return [block for section in plan.sections for _, op in section.ops for _, block in getattr(op, "items", ())]


def test_a_repeated_block_planned_once_gives_the_plan_of_planning_it_every_time(monkeypatch):
    from archspec.plan.blocks import base

    planned = {name: archspec.load_plan(name) for name in archspec.list_specs()}
    # resnet50's 16 blocks are 8 records: a stage plans its first block and its second, and repeats the second.
    assert len(_blocks(planned["resnet50"])) == 16 and len({id(b) for b in _blocks(planned["resnet50"])}) == 8
    monkeypatch.setattr(base, "_repeats", lambda walker, previous: False)
    for name, plan in planned.items():
        assert archspec.load_plan(name) == plan, name


# ---- torch stays out; the docs show real output ----


def test_sample_fit_validate_and_plot_samples_do_not_import_torch(tmp_path):
    space = tmp_path / "cifar.yaml"
    space.write_text(CIFAR_SPACE)
    out = tmp_path / "s"
    for args in (
        ["sample", str(space), "-n", "3", "--out", str(out), "--jobs", "1"],
        ["validate", str(space)],
        ["fit", "resnet50", "--flops", "2G"],
        ["plot-samples", str(out / "samples.json"), "--out", str(tmp_path / "p.svg")],
    ):
        result = run_without_torch(args)
        assert "NO_TORCH" in result.stderr, (args, result.stderr[-2000:])
    assert (tmp_path / "p.svg").exists()


_MARKER = re.compile(
    r"<!-- (?P<stream>output|stderr): (?P<command>.+?) -->\n```console\n\$ (?P=command)\n(?P<body>.*?)```", re.S
)


def _doc_examples():
    text = (ROOT / "docs" / "design-spaces.md").read_text()
    for match in _MARKER.finditer(text):
        yield pytest.param(
            match.group("stream"), match.group("command"), match.group("body"), id=match.group("command")
        )


@pytest.mark.parametrize("stream,command,shown", list(_doc_examples()))
def test_design_spaces_doc_shows_what_the_commands_print(cli, tmp_path, monkeypatch, stream, command, shown):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)
    # A folder or file the command writes goes to a temporary place, and is named as the doc names it.
    outs = {str(tmp_path / a): a for i, a in enumerate(args) if i and args[i - 1] == "--out"}
    args = [str(tmp_path / a) if i and args[i - 1] == "--out" else a for i, a in enumerate(args)]
    result = cli(*args[1:])
    assert result.exit_code == 0, result.output
    text = result.stdout if stream == "output" else result.stderr
    for written, shown_as in outs.items():
        text = text.replace(written, shown_as)
    lines = [line.rstrip() for line in text.strip("\n").splitlines() if not line.startswith("archspec: sampling")]
    assert lines == [line.rstrip() for line in shown.strip("\n").splitlines()]


def test_design_spaces_doc_shows_the_space_file_as_it_is():
    text = (ROOT / "docs" / "design-spaces.md").read_text()
    shown = re.search(r"<!-- file: specs/spaces/regnetx.yaml -->\n```yaml\n(.*?)```", text, re.S)
    assert shown is not None and shown.group(1) == REGNETX.read_text()


def test_design_spaces_doc_shows_a_sampled_spec_as_it_is_written(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / "design-spaces.md").read_text()
    shown = re.search(r"<!-- file: regnetx-20/regnetx-0001.yaml -->\n```yaml\n(.*?)```", text, re.S)
    result = cli(
        "sample", "specs/spaces/regnetx.yaml", "-n", "1", "--seed", "0", "--out", tmp_path / "s", "--jobs", "1"
    )
    assert result.exit_code == 0, result.output
    assert shown is not None and shown.group(1) == (tmp_path / "s" / "regnetx-0001.yaml").read_text()


def test_design_spaces_doc_fit_table_is_what_fit_gives():
    text = (ROOT / "docs" / "design-spaces.md").read_text()
    rows = re.findall(r"^\| (\d+)G \| ([\d, ]+) \| ([\d, ]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|", text, re.M)
    assert [row[0] for row in rows] == ["1", "2", "8"]
    for target, depths, widths, flops, macs, params in rows:
        result = fit("resnet50", flops=int(target) * 1e9)
        assert ", ".join(map(str, result.new_depths)) == depths
        assert ", ".join(map(str, result.new_widths)) == widths
        assert (f"{result.new_flops:,}", f"{result.new_macs:,}", f"{result.new_params:,}") == (flops, macs, params)
