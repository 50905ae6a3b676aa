"""No input crashes archspec: YAML traps, exit codes, --debug, the memory guard, atomic writes, checkpoints."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archspec.errors import SpecError
from archspec.lang import yamldoc
from archspec.plan import load_plan

ROOT = Path(__file__).resolve().parent.parent
SMALL = "stages:\n  - {depth: 1, width: 8}\n"


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level is nine aliases of the one before, 9**9 values in all."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def problems_of(call) -> list[str]:
    with pytest.raises(SpecError) as info:
        call()
    return [str(p) for p in info.value.problems]


# --- YAML traps that no file may turn into a crash or a hang ---------------------------------


def test_an_alias_bomb_is_refused_in_under_a_second(write):
    path = write("bomb.yaml", SMALL + billion_laughs())
    started = time.perf_counter()
    messages = problems_of(lambda: load_plan(str(path)))
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert messages == [
        f"{path}:7:5: a4: document expands to more than {yamldoc.MAX_NODES} values through aliases; refusing to "
        "expand it"
    ]


def test_an_alias_bomb_made_of_merge_keys_is_refused_in_under_a_second(write):
    # Merging empty mappings builds no values at all, so only a budget on every step stops it.
    lines = ["m0: &m0 {}"] + [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 12)]
    path = write("merge_bomb.yaml", SMALL + "\n".join(lines) + "\n")
    started = time.perf_counter()
    messages = problems_of(lambda: load_plan(str(path)))
    assert time.perf_counter() - started < 1.0
    assert "refusing to expand it" in messages[0]


def test_the_refusal_of_an_alias_bomb_does_not_print_the_document_back(cli, write):
    path = write("bomb.yaml", SMALL + billion_laughs())
    result = cli("validate", path)
    assert result.exit_code == 1
    assert len(result.stderr) < 300 and "lol" not in result.stderr


def test_a_recursive_alias_is_refused(write):
    path = write("loop.yaml", SMALL + "head: &h {hidden: [*h]}\n")
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:3:7: head: values nest more than 32 levels deep (a recursive alias?)"
    ]


def test_a_recursive_merge_key_is_refused(write):
    path = write("merge_loop.yaml", SMALL + "stem: &s {<<: *s}\n")
    assert "recursive alias" in problems_of(lambda: load_plan(str(path)))[0]


def test_brackets_nested_thousands_deep_are_a_spec_error_not_a_recursion_error(write):
    path = write("deep.yaml", "stages: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:1:1: (document): values nest far more than 32 levels deep; a spec is a shallow document"
    ]


def test_a_file_over_the_size_limit_is_refused_without_parsing_it(write):
    path = write("big.yaml", SMALL + "#" * yamldoc.MAX_BYTES)
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:1:1: (document): file is larger than 1024 KiB; a spec is a short text file"
    ]


def test_a_key_with_control_characters_is_reported_on_one_line(write):
    path = write("ctrl.yaml", SMALL + '"a\\rb\\nc": 1\n')
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:3:1: a\\rb\\nc: unknown key `a\\rb\\nc`; valid keys here: " + ", ".join(sorted(_spec_keys()))
    ]


def _spec_keys():
    from archspec.lang.schema import Spec

    return Spec.model_fields


def test_several_mistakes_give_one_line_each(write):
    path = write("two.yaml", "shortcut: D\nstages:\n  - {depth: 0, width: 8}\n")
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:1:11: shortcut: got the text 'D'; expected one of 'A', 'B' or 'C'",
        f"{path}:3:13: stages.0.depth: expected a value of at least 1, got 0",
    ]


def test_a_mapping_spec_reports_paths_without_inventing_line_numbers():
    spec = {"block": "vgg", "stem": {"type": "none"}, "input": {"size": 2}, "stages": [{"depth": 1, "width": 8}] * 2}
    assert problems_of(lambda: load_plan(spec)) == [
        "<mapping>: stages.1: the feature map shrinks to 0x0 at a 2x2 max pool for a 2x2 input; use a larger "
        "input.size or fewer stride-2 stages"
    ]


def test_a_missing_extends_path_is_named_relative_to_the_file_that_has_it(write):
    path = write("sub/child.yaml", "extends: ../nothere.yaml\n")
    missing = os.path.normpath(path.parent.parent / "nothere.yaml")
    assert problems_of(lambda: load_plan(str(path))) == [
        f"{path}:1:10: extends: no spec file '{missing}' (a path in `extends` is relative to the file that has it)"
    ]


def test_a_value_inherited_from_a_parent_names_the_child_that_extends_it(write):
    write("parent.yaml", "shortcut: E\n" + SMALL)
    child = write("child.yaml", "extends: parent.yaml\nhead: {num_classes: 10}\n")
    parent = child.parent / "parent.yaml"
    assert problems_of(lambda: load_plan(str(child))) == [
        f"{parent}:1:11: shortcut: got the text 'E'; expected one of 'A', 'B' or 'C' (extended by {child}:1)"
    ]


# --- --set ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("stages.0.depth=0", "--set stages.0.depth=0: stages.0.depth: expected a value of at least 1, got 0"),
        (
            "stages.9.depth=2",
            "--set stages.9.depth=2: stages.9: index 9 is out of range: the list has 3 entries (0 to 2)",
        ),
        ("depth", "--set depth: (document): expected KEY=VALUE, for example --set stages.2.depth=36"),
        (
            "stages..depth=2",
            "--set stages..depth=2: stages..depth: empty part in the key; "
            "use dots between names, like head.num_classes",
        ),
        (
            "head.num_classes=[",
            "--set head.num_classes=[: head.num_classes: invalid YAML: while parsing a flow node, expected the "
            "node content, but found the end of the file",
        ),
        ("name.first=x", "--set name.first=x: name: is a single value ('resnet20'), it has no fields to set"),
        (
            "extends=resnet50",
            "--set extends=resnet50: extends: cannot be changed with --set; write `extends:` in the spec file",
        ),
    ],
)
def test_set_mistakes_name_the_override(item, message):
    assert problems_of(lambda: load_plan("resnet20", overrides=[item])) == [message]


# --- the command line: exit codes, no tracebacks, --debug --------------------------------------


@pytest.mark.parametrize(
    "command", [["validate"], ["show"], ["flops"], ["diff", "resnet18"], ["build", "--device", "cpu"]]
)
def test_every_command_reports_a_bad_spec_in_one_line_and_exits_1(cli, write, command):
    path = write("bad.yaml", "stages:\n  - {depth: yes, width: 8}\n")
    result = cli(command[0], path, *command[1:])
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1]
        == f"{path}:2:13: stages.0.depth: expected an integer, got the boolean `yes` (YAML reads "
        "yes/no/on/off/true/false as booleans)"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "resnet18", "--no-such-option"],
        ["validate"],
        ["no-such-command"],
        ["flops", "resnet18", "--size", "0"],
        ["build", "resnet18", "--batch", "0"],
    ],
)
def test_usage_errors_exit_2(cli, args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_good_spec_exits_0(cli):
    result = cli("validate", "resnet18")
    assert result.exit_code == 0
    assert result.stdout.startswith("resnet18: ok")


def test_debug_shows_the_traceback_of_a_spec_error(cli, write):
    # `show`: `validate` gathers the problems of several files and prints them without one (see docs/errors.md).
    path = write("bad.yaml", "stages: []\n")
    result = cli("--debug", "show", path)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().endswith(f"{path}:1:9: stages: expected a list of at least 1 entry, got an empty list")


def test_an_internal_error_is_one_line_without_debug_and_a_traceback_with_it(cli, monkeypatch):
    import archspec.plan

    def broken(*args, **kwargs):
        raise KeyError("stem")

    monkeypatch.setattr(archspec.plan, "plan_document", broken)
    result = cli("validate", "resnet18")
    assert result.exit_code == 1
    assert result.stderr == "archspec: internal error: KeyError: 'stem' (a bug; rerun with --debug for the traceback)\n"
    debug = cli("--debug", "validate", "resnet18")
    assert isinstance(debug.exception, KeyError)  # the CliRunner holds what a terminal would print as a traceback


def test_the_installed_command_exits_1_without_a_traceback_and_2_for_usage(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {depth: 2.0, width: 8}\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "archspec", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )

    spec_error = run("validate", "bad.yaml")
    assert (spec_error.returncode, spec_error.stderr) == (
        1,
        "bad.yaml:2:13: stages.0.depth: expected an integer, got the number 2.0\n",
    )
    usage = run("validate", "bad.yaml", "--bogus")
    assert usage.returncode == 2 and "No such option" in usage.stderr and "Traceback" not in usage.stderr
    debug = run("--debug", "show", "bad.yaml")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


# --- the memory guard -------------------------------------------------------------------------


def test_the_estimate_is_the_parameters_plus_three_live_copies_of_the_largest_feature_map():
    from archspec.counting.memory import estimate_bytes

    plan = load_plan("resnet50")
    params, forward = estimate_bytes(plan, batch=8)
    assert params == 25_557_032 * 4
    assert forward == 8 * (64 * 112 * 112) * 4 * 3  # conv1's output, as big as layer1's
    assert estimate_bytes(plan, batch=8, mode="weights") == (params, 0)


def test_build_refuses_a_batch_that_cannot_fit_before_allocating_anything(cli):
    started = time.perf_counter()
    result = cli("build", "resnet18", "--device", "cpu", "--batch", "10000000")
    assert result.exit_code == 1
    line = result.stderr.splitlines()[-1]
    assert line.startswith("resnet18: --batch: needs about 89721.7")
    assert "forward pass at batch 10000000 " in line and line.endswith(
        "use a smaller --batch or a smaller spec, or pass --force"
    )
    assert time.perf_counter() - started < 60  # nothing of 90 TiB was touched


def test_force_skips_the_memory_check(cli, monkeypatch):
    import archspec.nn.guard

    monkeypatch.setattr(archspec.nn.guard, "available_bytes", lambda device: 1024)
    refused = cli("build", "resnet20", "--device", "cpu")
    assert refused.exit_code == 1
    assert "but the cpu has 0.00 GiB free" in refused.stderr
    forced = cli("build", "resnet20", "--device", "cpu", "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.startswith("resnet20: 20 layers, 269,722 parameters")


def test_the_check_is_skipped_when_free_memory_cannot_be_told(monkeypatch):
    import archspec.nn.guard
    from archspec.nn.guard import check_fits

    monkeypatch.setattr(archspec.nn.guard, "available_bytes", lambda device: None)
    check_fits(load_plan("resnet152"), "cpu", batch=10**9)


# --- files: --out, atomic writes, checkpoints ---------------------------------------------------


def test_a_failed_write_leaves_the_previous_file_intact_and_no_temporary_file(tmp_path):
    from archspec.nn.checkpoint import atomic_write

    target = tmp_path / "model.pt"
    target.write_bytes(b"previous contents")

    def half_then_fail(handle):
        handle.write(b"half of the new")
        raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError, match="disk pulled out"):
        atomic_write(target, half_then_fail, force=True)
    assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_an_interrupt_during_a_write_leaves_the_previous_file_intact(tmp_path):
    from archspec.nn.checkpoint import atomic_write

    target = tmp_path / "model.pt"
    target.write_bytes(b"previous contents")

    def interrupted(handle):
        handle.write(b"x" * 1000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted, force=True)
    assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_an_interrupted_checkpoint_write_keeps_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    import torch

    from archspec import api
    from archspec.nn.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "resnet20.pt"
    model = api.build("resnet20", device="cpu")
    save_checkpoint(model, load_plan("resnet20").spec, path)
    before = path.read_bytes()
    real_save = torch.save

    def save_then_die(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(len(before) // 2)  # a half-written file, then the process "dies"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_die)
    other = api.build("resnet20", device="cpu")
    with pytest.raises(SpecError) as info:
        save_checkpoint(other, load_plan("resnet20").spec, path, force=True)
    assert str(info.value) == f"{path}: --out: cannot write the file: No space left on device; nothing was changed"
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet20.pt"]
    reloaded = load_checkpoint(path, device="cpu")
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)


def test_atomic_write_never_overwrites_without_force(tmp_path):
    from archspec.nn.checkpoint import atomic_write

    target = tmp_path / "out.json"
    target.write_text("keep me")
    assert problems_of(lambda: atomic_write(target, lambda h: h.write(b"new"))) == [
        f"{target}: --out: file exists; pass --force to overwrite it"
    ]
    assert target.read_text() == "keep me"
    atomic_write(target, lambda h: h.write(b"new"), force=True)
    assert target.read_text() == "new"


def test_atomic_write_gives_the_file_the_usual_permissions(tmp_path):
    from archspec.nn.checkpoint import atomic_write

    target = tmp_path / "schema.json"
    atomic_write(target, lambda h: h.write(b"{}"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_out_into_a_missing_folder_or_onto_a_folder_is_refused(tmp_path):
    from archspec.nn.checkpoint import atomic_write

    assert problems_of(lambda: atomic_write(tmp_path / "no" / "x.pt", lambda h: None)) == [
        f"{tmp_path}/no/x.pt: --out: folder '{tmp_path}/no' does not exist"
    ]
    assert problems_of(lambda: atomic_write(tmp_path, lambda h: None, force=True)) == [
        f"{tmp_path}: --out: is a folder; give a file name"
    ]


def test_build_out_on_an_existing_file_without_force_exits_1_and_leaves_it(cli, tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"an older checkpoint")
    result = cli("build", "resnet20", "--device", "cpu", "--out", target)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"{target}: --out: file exists; pass --force to overwrite it"
    assert target.read_bytes() == b"an older checkpoint"


def test_build_out_with_force_writes_a_checkpoint_that_loads(cli, tmp_path):
    from archspec.nn.checkpoint import load_checkpoint

    target = tmp_path / "model.pt"
    target.write_bytes(b"an older checkpoint")
    result = cli("build", "resnet20", "--device", "cpu", "--out", target, "--force")
    assert result.exit_code == 0, result.output
    assert sum(p.numel() for p in load_checkpoint(target, device="cpu").parameters()) == 269_722


@pytest.fixture
def checkpoint(tmp_path):
    """A resnet20 checkpoint as plain data, and a function that saves a tampered copy of it."""
    import torch

    from archspec import api
    from archspec.nn.checkpoint import save_checkpoint

    path = tmp_path / "resnet20.pt"
    save_checkpoint(api.build("resnet20", device="cpu"), load_plan("resnet20").spec, path)
    payload = torch.load(path, weights_only=True)

    def tampered(change, checksum: bool = True) -> Path:
        """A copy changed by `change`; with `checksum` its checksum is made to match (a crafted file, not a
        corrupted one)."""
        from archspec.nn.checkpoint import state_digest

        copy = {**payload, "spec": dict(payload["spec"]), "state_dict": dict(payload["state_dict"])}
        change(copy)
        if checksum and all(isinstance(v, torch.Tensor) for v in copy["state_dict"].values()):
            copy["sha256"] = state_digest(copy["state_dict"])
        out = tmp_path / "tampered.pt"
        torch.save(copy, out)
        return out

    return tampered


def test_a_state_dict_with_a_wrong_shape_names_the_first_mismatched_key(checkpoint):
    import torch

    from archspec.nn.checkpoint import load_checkpoint

    def reshape(payload):
        payload["state_dict"]["layer2.0.conv1.weight"] = torch.zeros(32, 16, 1, 1)
        payload["state_dict"]["fc.weight"] = torch.zeros(3, 64)

    path = checkpoint(reshape)
    assert problems_of(lambda: load_checkpoint(path, device="cpu")) == [
        f"{path}: state_dict: does not fit resnet20: wrong shape in 2 tensors: stage 2, block 1 "
        "(layer2.0.conv1.weight is 32x16x1x1 in the file, "
        "32x16x3x3 in the spec), the head (fc.weight is 3x64 in the file, 10x64 in the spec)"
    ]


def test_a_checkpoint_whose_weights_changed_on_disk_is_detected(checkpoint):
    import torch

    from archspec.nn.checkpoint import load_checkpoint

    def flip(payload):
        weight = payload["state_dict"]["layer1.0.conv1.weight"].clone()
        weight.view(-1)[0] += 1
        payload["state_dict"]["layer1.0.conv1.weight"] = weight

    path = checkpoint(flip, checksum=False)
    assert problems_of(lambda: load_checkpoint(path, device="cpu")) == [
        f"{path}: sha256: the weights do not match the checksum stored with them: the file is corrupted"
    ]
    assert torch.load(path, weights_only=True)["version"] == 2


def test_a_state_dict_with_a_missing_or_extra_key_names_it(checkpoint):
    from archspec.nn.checkpoint import load_checkpoint

    missing = checkpoint(lambda payload: payload["state_dict"].pop("layer1.1.bn2.running_var"))
    assert problems_of(lambda: load_checkpoint(missing, device="cpu")) == [
        f"{missing}: state_dict: does not fit resnet20: missing 1 tensor: stage 1, block 2 (layer1.1.bn2.running_var)"
    ]
    extra = checkpoint(
        lambda payload: payload["state_dict"].__setitem__("layer4.0.conv1.weight", payload["state_dict"]["fc.bias"])
    )
    assert problems_of(lambda: load_checkpoint(extra, device="cpu")) == [
        f"{extra}: state_dict: does not fit resnet20: unexpected 1 tensor: stage 4, block 1 (layer4.0.conv1.weight)"
    ]


def test_a_state_dict_value_that_is_not_a_tensor_is_named(checkpoint):
    from archspec.nn.checkpoint import load_checkpoint

    path = checkpoint(lambda payload: payload["state_dict"].__setitem__("conv1.weight", [1.0, 2.0]))
    assert problems_of(lambda: load_checkpoint(path, device="cpu")) == [
        f"{path}: state_dict: key 'conv1.weight' holds list, not a tensor"
    ]


def test_a_tampered_embedded_spec_is_validated(checkpoint):
    from archspec.nn.checkpoint import load_checkpoint

    path = checkpoint(lambda payload: payload["spec"].__setitem__("shortcut", "D"))
    assert problems_of(lambda: load_checkpoint(path, device="cpu")) == [
        f"{path} (embedded spec): shortcut: got the text 'D'; expected one of 'A', 'B' or 'C'"
    ]


def test_a_file_that_is_not_a_checkpoint_gets_a_clear_message(tmp_path):
    import torch

    from archspec.nn.checkpoint import load_checkpoint

    text = tmp_path / "resnet18.yaml"
    text.write_text("stages: []\n")
    other = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert problems_of(lambda: load_checkpoint(text, device="cpu")) == [
        f"{text}: checkpoint: not an archspec checkpoint: it is a text file (a spec?), not a torch file"
    ]
    assert problems_of(lambda: load_checkpoint(empty, device="cpu")) == [
        f"{empty}: checkpoint: not an archspec checkpoint: the file is empty"
    ]
    assert problems_of(lambda: load_checkpoint(other, device="cpu")) == [
        f"{other}: checkpoint: not an archspec checkpoint: a torch file, but not one written by `archspec build "
        "--out` or `archspec train`"
    ]
    assert problems_of(lambda: load_checkpoint(tmp_path / "gone.pt", device="cpu")) == [
        f"{tmp_path / 'gone.pt'}: checkpoint: no such checkpoint file"
    ]
