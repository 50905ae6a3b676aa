"""`archspec study`: populations trained as Ray tasks through the embedded Ray, results appended per member,
resumed after SIGTERM, a diverging member failed with its reason, results drawn by plot-samples.

Ray starts in seconds here, so the members are tiny (digits, two-stage specs, one epoch) and one study is
shared by the assertions that only read it.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from archspec.tools.study.records import MemberRecord
from archspec.tools.study.summary import complexity_weights, ks_distance, median_interval, summarize

TINY = """\
name: {name}
input: {{channels: 1, size: 8}}
stem: {{type: cifar, width: {width}}}
block: {block}
stages:
  - {{depth: 1, width: {width}}}
  - {{depth: 1, width: {wide}}}
head: {{num_classes: 10}}
"""
# Residual blocks without normalisation add up their branches' variance: 32 of them overflow within the first
# epoch at the default learning rate, while the same recipe trains the normalised members.
DIVERGING = """\
name: blowup
input: {channels: 1, size: 8}
stem: {type: cifar, width: 4}
block: basic
norm: none
stages:
  - {depth: 16, width: 4}
  - {depth: 16, width: 4}
head: {num_classes: 10}
"""
RECORD_KEYS = {"population", "name", "spec", "status", "error", "loss", "params", "flops", "epochs", "seconds"}
RAY_PROCESS = re.compile(r"raylet|gcs_server|ray::|ray/_private|default_worker\.py")


def _write_tiny(folder: Path, name: str, block: str, width: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(TINY.format(name=name, block=block, width=width, wide=2 * width))


def _ray_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if RAY_PROCESS.search(command):
            found.add(int(entry.name))
    return found


def _assert_no_new_ray_process(before: set[int]) -> None:
    deadline = time.monotonic() + 20
    while (left := _ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes left behind: {sorted(left)}"


def _archspec(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        **kwargs,  # type: ignore[call-overload]
    )


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("populations")
    for name, block, width in (("a", "basic", 8), ("b", "plain", 8)):
        _write_tiny(root / "small", name, block, width)
        _write_tiny(root / "again", name, block, width)  # the same members, without the diverging one
    for name, block, width in (("c", "basic", 12), ("d", "plain", 12)):
        _write_tiny(root / "wide", name, block, width)
    (root / "small" / "blowup.yaml").write_text(DIVERGING)
    return root


@pytest.fixture(scope="module")
def study(specs, tmp_path_factory):
    """One study of two populations (small: a, b and the diverging blowup; wide: c, d) on two workers."""
    out = tmp_path_factory.mktemp("study") / "run"
    before = _ray_processes()
    result = _archspec(
        "study", specs / "small", specs / "wide", "--out", out, "--epochs", "1", "--workers", "2", "--format", "json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": out, "result": result, "ray_before": before}


def test_every_member_has_one_record_with_the_documented_fields(study, specs):
    records = _records(study["out"] / "results.jsonl")
    assert sorted((r["population"], r["name"]) for r in records) == [
        ("small", "a"),
        ("small", "b"),
        ("small", "blowup"),
        ("wide", "c"),
        ("wide", "d"),
    ]
    for record in records:
        assert set(record) >= RECORD_KEYS
        assert Path(str(record["spec"])) == (specs / str(record["population"]) / f"{record['name']}.yaml").resolve()
        assert record["epochs"] == 1
        assert isinstance(record["seconds"], float) and record["seconds"] > 0
        if record["status"] == "ok":
            # The held-out fifth of the 1,797 digits is 359 images: an error is a count of them.
            assert 0 <= float(record["error"]) <= 1  # type: ignore[arg-type]
            assert round(float(record["error"]) * 359, 6).is_integer()  # type: ignore[arg-type]
            assert math.isfinite(float(record["loss"]))  # type: ignore[arg-type]


def test_params_and_flops_are_the_counts_of_the_trained_shape(study, specs):
    from archspec.api import count

    for record in _records(study["out"] / "results.jsonl"):
        counted = count(str(record["spec"]), overrides=["input.channels=1", "input.size=[8, 8]"])
        assert (record["params"], record["flops"]) == (counted.params, counted.flops)


def test_a_diverging_member_is_failed_with_its_reason_and_the_others_finish(study):
    records = {r["name"]: r for r in _records(study["out"] / "results.jsonl")}
    failed = records.pop("blowup")
    assert failed["status"] == "failed"
    assert failed["error"] is None and failed["loss"] is None
    assert "loss became nan" in str(failed["reason"])
    assert all(r["status"] == "ok" and r["reason"] is None for r in records.values())


def test_the_csv_holds_the_same_records(study):
    records = _records(study["out"] / "results.jsonl")
    with open(study["out"] / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["population"], r["name"], r["status"]) for r in rows] == [
        (r["population"], r["name"], r["status"]) for r in records
    ]
    for row, record in zip(rows, records, strict=True):
        assert (float(row["error"]) if row["error"] else None) == record["error"]


def test_each_members_curves_are_where_archspec_train_puts_them(study):
    folder = study["out"] / "members" / "wide" / "c"
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    record = next(r for r in _records(study["out"] / "results.jsonl") if r["name"] == "c")
    assert len(metrics) == 1 and metrics[0]["heldout_error"] / 100 == pytest.approx(record["error"], abs=1e-12)
    assert (folder / "model.pt").is_file()


def test_the_summary_gives_each_populations_spread_and_the_pairs_ks_distance(study):
    summary = json.loads(study["result"].stdout)
    records = _records(study["out"] / "results.jsonl")
    by_name = {p["name"]: p for p in summary["populations"]}
    for name in ("small", "wide"):
        errors = [float(r["error"]) for r in records if r["population"] == name and r["status"] == "ok"]  # type: ignore[arg-type]
        own = [r for r in records if r["population"] == name]
        assert by_name[name] == {
            "name": name,
            "members": len(own),
            "ok": len(errors),
            "failed": len(own) - len(errors),
            "min_error": min(errors),
            "median_error": statistics.median(errors),
            "max_error": max(errors),
        }
    (pair,) = summary["pairs"]
    assert (pair["first"], pair["second"]) == ("small", "wide")
    assert 0 <= pair["ks"] <= 1 and pair["left"] in ("small", "wide")
    assert "study: 5/5 finished (1 failed)" in study["result"].stderr


def test_progress_on_stderr_counts_finished_failed_and_running_members_and_the_time_left(study):
    lines = [line for line in study["result"].stderr.splitlines() if re.match(r"archspec: study: \d+/5 ", line)]
    assert len(lines) == 5, study["result"].stderr[-3000:]
    for done, line in enumerate(lines, 1):
        # The time left is an estimate: on a loaded machine it can pass a minute (1m05s).
        assert re.match(
            rf"archspec: study: {done}/5 finished \(\d failed\), [0-2] running, about (\d+[hm])*\d+[sm] left; ", line
        )
    assert lines[-1].startswith("archspec: study: 5/5 finished (1 failed), 0 running, about 0s left; ")


def test_the_json_summary_gives_the_median_difference_inside_its_bootstrap_interval(study):
    (pair,) = json.loads(study["result"].stdout)["pairs"]
    records = _records(study["out"] / "results.jsonl")
    medians = {
        name: statistics.median(float(r["error"]) for r in records if r["population"] == name and r["status"] == "ok")  # type: ignore[arg-type]
        for name in ("small", "wide")
    }
    assert pair["median_difference"] == pytest.approx(medians["small"] - medians["wide"], abs=1e-12)
    low, high = pair["interval"]
    assert low <= pair["median_difference"] <= high


def test_the_table_summary_shows_each_population_and_each_pair(study):
    from archspec.cli.study import summary_table
    from archspec.tools.study.records import read_records

    summary = summarize(read_records(study["out"] / "results.jsonl"), ["small", "wide"])
    lines = summary_table(summary).splitlines()
    assert lines[0].split()[:4] == ["population", "members", "ok", "failed"]
    assert "min error" in lines[0] and "median error" in lines[0] and "max error" in lines[0]
    assert lines[2].split()[:4] == ["small", "3", "2", "1"] and lines[3].split()[:4] == ["wide", "2", "2", "0"]
    pair = summary.pairs[0]
    (row,) = [line for line in lines if line.startswith("small vs wide")]
    assert row.split()[3:] == [
        f"{pair.ks:.3f}",
        pair.left,
        f"{pair.median_difference:+.4f}",
        f"[{pair.interval[0]:+.4f},",
        f"{pair.interval[1]:+.4f}]",
    ]
    assert "median error difference [95% bootstrap]" in "\n".join(lines)


def test_the_study_leaves_no_ray_process(study):
    _assert_no_new_ray_process(study["ray_before"])


def test_plot_samples_draws_the_results(study, cli, tmp_path):
    from PIL import Image

    results = study["out"] / "results.jsonl"
    result = cli("plot-samples", results, "--edf", "error", "--out", tmp_path / "edf.png")
    assert result.exit_code == 0, result.output
    assert "small (3 members, 1 failed)" in result.stderr and "wide (2 members)" in result.stderr
    assert Image.open(tmp_path / "edf.png").size == (960, 660)
    result = cli("plot-samples", study["out"], "--vs", "params", "--out", tmp_path / "scatter.svg")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "scatter.svg").read_text()
    assert "Error against params" in svg and "parameters" in svg
    result = cli("plot-samples", results, "--edf", "depth", "--out", tmp_path / "bad.png")
    assert result.exit_code == 2 and "--edf depth" in result.stderr and not (tmp_path / "bad.png").exists()


def test_sigterm_mid_study_then_resume_trains_each_member_once_and_keeps_the_records(study, specs, tmp_path):
    out = tmp_path / "run"
    args = ["study", specs / "again", specs / "wide", "--label", "small", "--out", out, "--epochs", "1"]
    before = _ray_processes()
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", *map(str, args), "--workers", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (results.is_file() and results.read_bytes().endswith(b"\n")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-2:] == [
        f"archspec: the finished members are recorded in {results}; add --resume to continue",
        "archspec: terminated",
    ]
    _assert_no_new_ray_process(before)
    first = results.read_bytes()
    assert 1 <= len(first.splitlines()) < 4

    result = _archspec(*args, "--workers", "2", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_no_new_ray_process(before)
    final = results.read_bytes()
    assert final.startswith(first)
    records = _records(results)
    assert sorted((r["population"], r["name"]) for r in records) == [
        ("small", "a"),
        ("small", "b"),
        ("wide", "c"),
        ("wide", "d"),
    ]
    # Same seed, data and recipe on the CPU: the same errors, with one worker or two, resumed or not.
    shared = {(r["population"], r["name"]): r["error"] for r in _records(study["out"] / "results.jsonl")}
    assert {(r["population"], r["name"]): r["error"] for r in records} == {
        key: shared[key] for key in [(r["population"], r["name"]) for r in records]
    }


def test_a_new_study_never_writes_over_a_previous_one(study, specs, cli):
    before = (study["out"] / "results.jsonl").read_bytes()
    result = cli("study", specs / "wide", "--out", study["out"], "--epochs", "1")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "pass --resume to continue it" in result.stderr
    result = cli("study", specs / "wide", "--out", study["out"], "--epochs", "2", "--resume")
    assert result.exit_code == 1 and "epochs" in result.stderr and "resume with the same options" in result.stderr
    assert (study["out"] / "results.jsonl").read_bytes() == before


def test_resume_needs_a_study(specs, cli, tmp_path):
    result = cli("study", specs / "wide", "--out", tmp_path, "--resume")
    assert result.exit_code == 1 and "holds no study to resume" in result.stderr


def test_without_ray_the_command_says_how_to_install_it(specs, tmp_path):
    probe = (
        "import sys\nsys.modules['ray'] = None\nfrom archspec.cli.application import run\n"
        f"run(['study', {str(specs / 'wide')!r}, '--out', {str(tmp_path / 'out')!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "archspec: archspec study needs ray, which is not installed; install it with: pip install 'archspec[study]'"
    ]
    assert not (tmp_path / "out").exists()


def test_more_gpus_per_member_than_this_machine_has_is_refused_before_ray_starts(specs, cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    wanted = torch.cuda.device_count() + 1
    result = cli("study", specs / "wide", "--out", tmp_path / "out", "--gpus-per-member", wanted)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"--gpus-per-member {wanted}: gpus-per-member: torch sees ") and "use 0 to train" in line
    assert not (tmp_path / "out").exists()


def test_only_the_study_engine_imports_ray():
    importers = []
    for path in (ROOT / "archspec").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(importers)) == ["archspec/tools/study/engine.py"]


# --- the statistics, against scipy -------------------------------------------------------------


def test_ks_distance_is_scipys_two_sample_statistic():
    from scipy.stats import ks_2samp

    rng = random.Random(3)
    for size_a, size_b in ((5, 7), (40, 40), (100, 63)):
        a = [rng.gauss(0.3, 0.05) for _ in range(size_a)]
        b = [rng.gauss(0.32, 0.07) for _ in range(size_b)]
        distance, sign = ks_distance(a, b)
        assert distance == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
        assert sign in (-1, 1)


def _record(population: str, name: str, error: float | None, flops: int = 1000) -> MemberRecord:
    status = "ok" if error is not None else "failed"
    return MemberRecord(population, name, f"{name}.yaml", status, error, 1.0, 10, flops, 1, 1.0)


def test_the_population_with_lower_errors_lies_left_and_the_interval_holds_the_gap():
    rng = random.Random(5)
    records = [_record("low", f"l{i}", rng.uniform(0.1, 0.2)) for i in range(60)]
    records += [_record("high", f"h{i}", rng.uniform(0.3, 0.4)) for i in range(60)]
    records.append(_record("high", "diverged", None))
    (pair,) = summarize(records).pairs
    assert (pair.first, pair.second, pair.left, pair.ks) == ("low", "high", "low", 1.0)
    low, high = median_interval([r.error for r in records[:60]], [r.error for r in records[60:120]])
    assert low <= pair.median_difference <= high < 0
    assert summarize(records).populations[1].failed == 1


def test_complexity_weights_give_every_population_the_same_complexity_distribution():
    rng = random.Random(7)
    # Population "big" holds mostly large models, "small" mostly small ones, over the same range.
    records = [_record("big", f"b{i}", 0.2, int(10 ** rng.triangular(3, 6, 6))) for i in range(300)]
    records += [_record("small", f"s{i}", 0.2, int(10 ** rng.triangular(3, 6, 3))) for i in range(300)]
    weights = complexity_weights(records, "flops")
    for population in ("big", "small"):
        assert sum(w for (p, _), w in weights.items() if p == population) == pytest.approx(1.0)

    def share_below(population: str, limit: float) -> float:
        own = [r for r in records if r.population == population]
        return sum(weights[(r.population, r.name)] for r in own if r.flops < limit)

    logs = [math.log(r.flops) for r in records]
    edges = [math.exp(min(logs) + k * (max(logs) - min(logs)) / 10) for k in range(1, 10)]  # ten bins on a log scale
    unweighted = [
        [sum(r.flops < e for r in records if r.population == p) / 300 for e in edges] for p in ("big", "small")
    ]
    assert (
        max(abs(x - y) for x, y in zip(*unweighted, strict=True)) > 0.2
    )  # the populations differ before weighting ...
    for edge in edges:
        assert share_below("big", edge) == pytest.approx(share_below("small", edge), abs=1e-9)  # ... not after


def test_records_survive_a_write_cut_short(tmp_path):
    from archspec.tools.study.records import append_record, read_records

    path = tmp_path / "results.jsonl"
    append_record(path, _record("p", "a", 0.25))
    whole = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'{"population": "p", "na')  # a write interrupted halfway
    assert [r.name for r in read_records(path)] == ["a"]
    assert [r.name for r in read_records(path, repair=True)] == ["a"]
    assert path.read_bytes() == whole
    os.truncate(path, len(whole))


# --- the stock spaces of the reproduced experiment --------------------------------------------


def test_the_vanilla_and_resnet_spaces_differ_only_by_the_shortcut():
    import yaml

    vanilla = yaml.safe_load((ROOT / "specs/spaces/vanilla.yaml").read_text())
    resnet = yaml.safe_load((ROOT / "specs/spaces/resnet.yaml").read_text())
    assert (vanilla.pop("block"), resnet.pop("block")) == ("plain", "basic")
    assert resnet.pop("shortcut") == "B"
    for space in (vanilla, resnet):
        del space["name"], space["description"]
    assert vanilla == resnet
    assert resnet["input"] == {"channels": 1, "size": 8} and len(resnet["stages"]) == 3


def test_a_draw_of_each_space_is_the_same_network_but_for_the_shortcut(cli, tmp_path):
    for name in ("vanilla", "resnet"):
        result = cli("sample", ROOT / f"specs/spaces/{name}.yaml", "-n", "20", "--seed", "0", "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
    vanilla = json.loads((tmp_path / "vanilla" / "samples.json").read_text())["samples"]
    resnet = json.loads((tmp_path / "resnet" / "samples.json").read_text())["samples"]
    assert [s["fields"] for s in vanilla] == [s["fields"] for s in resnet]
    # Projection shortcuts add parameters where a stage changes width or stride; never fewer.
    assert all(r["params"] >= v["params"] for v, r in zip(vanilla, resnet, strict=True))


def test_studies_md_shows_the_resnet_space_as_it_is():
    text = (ROOT / "docs" / "studies.md").read_text()
    shown = re.search(r"<!-- file: specs/spaces/resnet.yaml -->\n```yaml\n(.*?)```", text, re.S)
    assert shown is not None and shown.group(1) == (ROOT / "specs/spaces/resnet.yaml").read_text()


# --- populations --------------------------------------------------------------------------------


def test_populations_are_sample_folders_spec_files_globs_and_stock_names(specs, tmp_path, cli):
    from archspec.tools.study.members import populations

    result = cli("sample", ROOT / "specs/spaces/resnet.yaml", "-n", "3", "--seed", "1", "--out", tmp_path / "drawn")
    assert result.exit_code == 0, result.output
    found = populations([str(tmp_path / "drawn"), str(specs / "wide" / "*.yaml"), "resnet20"], ["mine"])
    assert [(p.label, [m.name for m in p.members]) for p in found] == [
        ("mine", ["resnet-0001", "resnet-0002", "resnet-0003"]),
        ("wide", ["c", "d"]),
        ("resnet20", ["resnet20"]),
    ]
    assert found[0].members[0].spec == str((tmp_path / "drawn" / "resnet-0001.yaml").resolve())
    # A glob the shell expanded: the files of one folder are one population.
    (expanded,) = populations([str(specs / "wide" / "c.yaml"), str(specs / "wide" / "d.yaml")])
    assert (expanded.label, [m.name for m in expanded.members]) == ("wide", ["c", "d"])


def test_two_populations_with_one_label_and_the_same_member_names_are_refused(specs):
    from archspec.errors import SpecError
    from archspec.tools.study.members import populations

    with pytest.raises(SpecError) as caught:
        populations([str(specs / "small"), str(specs / "again")], ["x", "x"])
    assert "two members named a" in str(caught.value) and "--label" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        populations([str(specs / "small")], ["no/slash"])
    assert caught.value.code == 2 and "--label" in str(caught.value)


# --- an existing cluster ------------------------------------------------------------------------

# A Ray cluster that outlives the study: started by this process's own `ray.init`, answering a task after the
# study has gone, then shut down by it.
CLUSTER = """\
import logging, sys
import ray
context = ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
print(context.address_info["gcs_address"], flush=True)
sys.stdin.readline()
print(len([n for n in ray.nodes() if n["Alive"]]), ray.get(ray.remote(lambda: 7).remote()), flush=True)
ray.shutdown()
"""


@pytest.mark.slow
def test_a_study_runs_on_an_existing_cluster_and_leaves_it_running(specs, tmp_path):
    before = _ray_processes()
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert cluster.stdout is not None and cluster.stdin is not None
        address = cluster.stdout.readline().strip()
        assert re.fullmatch(r"[\w.-]+:\d+", address), address
        out = tmp_path / "run"
        # The cluster requires Ray's token (ray.init turns token authentication on for a new cluster); a driver
        # that names an address sends it when RAY_AUTH_MODE says so, as Ray documents.
        env = {**os.environ, "RAY_AUTH_MODE": "token"}
        result = _archspec("study", specs / "wide", "--out", out, "--epochs", "1", "--address", address, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"on the Ray cluster at {address}" in result.stderr
        assert sorted((r["name"], r["status"]) for r in _records(out / "results.jsonl")) == [("c", "ok"), ("d", "ok")]
        # RAY_ADDRESS reaches the same cluster.
        env = {**env, "RAY_ADDRESS": address}
        result = _archspec("study", specs / "wide", "--out", tmp_path / "again", "--epochs", "1", env=env)
        assert result.returncode == 0 and f"on the Ray cluster at {address}" in result.stderr, result.stderr[-3000:]
        # The cluster is still there, as it was: its node alive and taking tasks.
        answer, _ = cluster.communicate("\n", timeout=120)
        assert answer.split() == ["1", "7"]
    finally:
        if cluster.poll() is None:
            cluster.kill()
            cluster.wait()
    _assert_no_new_ray_process(before)


@pytest.mark.parametrize("through", ["--address", "RAY_ADDRESS"])
def test_an_address_where_no_cluster_listens_is_refused_in_one_line_before_anything_is_written(
    specs, tmp_path, through
):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    before = _ray_processes()
    out = tmp_path / "run"
    args = [sys.executable, "-m", "archspec", "study", specs / "wide", "--out", out, "--epochs", "1"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if through == "--address":
        args += ["--address", address]
    else:
        env["RAY_ADDRESS"] = address
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    named = f"--address {address}" if through == "--address" else f"RAY_ADDRESS={address}"
    assert line.startswith(f"{named}: address: no Ray cluster answers at {address} (connection refused); "), line
    assert "RAY_AUTH_MODE=token" in line and "Traceback" not in result.stdout + result.stderr
    assert not out.exists()
    _assert_no_new_ray_process(before)


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def _training_workers(study: int) -> set[int]:
    """The Ray workers of the study `study` running a member now (Ray titles a worker after the task it runs)."""
    found = set()
    for pid in _ray_processes():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if command.startswith("ray::train_member") and _descends_from(pid, study):
            found.add(pid)
    return found


@pytest.mark.slow
def test_a_member_whose_worker_dies_is_tried_three_times_then_failed(specs, tmp_path):
    out = tmp_path / "run"
    before = _ray_processes()
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", "study", specs / "wide" / "c.yaml", "--out", out, "--epochs", "500"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed: list[int] = []
    deadline = time.monotonic() + 180
    while process.poll() is None and len(killed) < 3 and time.monotonic() < deadline:
        for pid in _training_workers(process.pid) - set(killed):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.1)
    _, stderr = process.communicate(timeout=120)
    assert len(killed) == 3, stderr[-3000:]
    assert process.returncode == 0, stderr[-3000:]
    (record,) = _records(out / "results.jsonl")
    assert (record["name"], record["status"], record["reason"]) == ("c", "failed", "the worker died (3 tries)")
    _assert_no_new_ray_process(before)


def test_plot_samples_draws_the_complexity_normalised_edf(cli, tmp_path):
    from archspec.tools.study.records import append_record

    rng = random.Random(11)
    results = tmp_path / "results.jsonl"
    for population, top in (("plain", 0.4), ("residual", 0.3)):
        for i in range(12):
            append_record(results, _record(population, f"m{i}", rng.uniform(0.1, top), rng.randrange(1000, 9000)))
    result = cli("plot-samples", results, "--edf", "error", "--normalize", "flops", "--out", tmp_path / "edf.svg")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "edf.svg").read_text()
    assert "Error EDF (normalised by flops): plain, residual" in svg
    assert "weighted to equal flops distributions" in svg
    result = cli("plot-samples", results, "--edf", "error", "--normalize", "params", "--out", tmp_path / "edf.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "edf.png").read_bytes().startswith(b"\x89PNG")
    # Populations without a common range of complexity cannot be weighted to match; nothing is drawn.
    append_record(results, _record("huge", "h", 0.2, 10**9))
    result = cli("plot-samples", results, "--edf", "error", "--normalize", "flops", "--out", tmp_path / "no.svg")
    assert result.exit_code == 1 and "shares no range of flops with the other populations" in result.stderr
    assert not (tmp_path / "no.svg").exists()
    result = cli("plot-samples", results, "--normalize", "flops", "--out", tmp_path / "no.svg")
    assert result.exit_code == 2 and "give --edf error with it" in result.stderr


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_normalize_names_the_population_that_cannot_be_weighted_whatever_its_place(cli, tmp_path, order):
    from archspec.tools.study.records import append_record

    rng = random.Random(3)
    files = []
    for population, low, high in (("plain", 1000, 9000), ("residual", 1000, 9000), ("huge", 10**9, 2 * 10**9)):
        path = tmp_path / f"{population}.jsonl"
        for i in range(8):
            append_record(path, _record(population, f"m{i}", rng.uniform(0.1, 0.4), rng.randrange(low, high)))
        files.append(path)
    shown = [files[i] for i in order]
    result = cli("plot-samples", *shown, "--edf", "error", "--normalize", "flops", "--out", tmp_path / "no.svg")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("--normalize flops: normalize: huge ("), line
    assert "shares no range of flops with the other populations (" in line, line
    assert not (tmp_path / "no.svg").exists()


def test_normalize_names_a_population_without_errors_and_a_pair_that_shares_no_range():
    from archspec.tools.study.summary import normalization_problem

    ranges = {"low": (1000, 2000), "mid": (1000, 10**6), "high": (10**6 - 1, 10**6), "all_failed": (1000, 10**6)}
    records = []
    for name, (low, high) in ranges.items():
        for i, flops in enumerate((low, high)):
            records.append(_record(name, f"{name}{i}", None if name == "all_failed" else 0.2, flops))
    assert normalization_problem(records, "flops") == (
        "all_failed has no member with an error (2 failed): there is nothing to weigh against the other populations"
    )
    # Each of low and high overlaps mid, but not each other: the pair is named, not the first population.
    records = [r for r in records if r.population != "all_failed"]
    message = normalization_problem(records, "flops")
    assert message is not None and message.startswith("low (1e+03 to 2e+03) and high (1e+06 to 1e+06) share no"), (
        message
    )
    assert normalization_problem([r for r in records if r.population != "high"], "flops") is None


def test_a_member_writes_its_state_once_after_its_last_epoch_and_keeps_every_epochs_curve(tmp_path):
    # In-process, without Ray: the member's training loop as a study runs it. A stopped member is retrained
    # whole, so no state is written between its epochs; the folder ends as archspec train --out leaves it.
    import torch

    from archspec.plan import load_plan
    from archspec.tools.progress import Progress
    from archspec.tools.train.data import load_data, parse_data
    from archspec.tools.train.loop import Cluster, Options, train_spec
    from archspec.tools.train.recipe import Recipe

    _write_tiny(tmp_path, "m", "basic", 4)
    plan = load_plan(tmp_path / "m.yaml")
    data = load_data(parse_data("digits"), 1, (8, 8), 10)
    folder = tmp_path / "member"
    folder.mkdir()
    seen = []
    torch.set_num_threads(1)
    train_spec(
        plan,
        data,
        Recipe(epochs=2),
        Options("cpu", save_every_epoch=False),
        Cluster(),
        torch.device("cpu"),
        folder,
        None,
        Progress(enabled=False),
        on_epoch_end=lambda name, epoch: seen.append((epoch, sorted(os.listdir(folder)))),
    )
    assert seen[0] == (1, [])
    assert seen[1][1] == ["metrics.csv", "metrics.jsonl", "state.pt"]
    assert sorted(os.listdir(folder)) == ["metrics.csv", "metrics.jsonl", "model.pt", "state.pt"]
    assert [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert torch.load(folder / "state.pt", weights_only=False)["epoch"] == 2
