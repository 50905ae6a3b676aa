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


@pytest.mark.parametrize(
    ("spec", "items", "messages"),
    [
        # A block knob the planner refuses, inherited by every stage from the network's `block:` mapping.
        (
            "convnext_tiny",
            ["block.kernel=4"],
            ["--set block.kernel=4: block.kernel: a depthwise kernel of 4 has no centre; use an odd kernel"],
        ),
        # The file's own knobs, refused by the kind an override chose (the kind's Pydantic model says no).
        (
            "convnext_tiny",
            ["block.type=bottleneck"],
            [
                "--set block.type=bottleneck: block.kernel: kernel shapes convnext, inverted_residual and mbconv "
                "blocks only, not bottleneck",
                "--set block.type=bottleneck: block.layer_scale: layer_scale shapes convnext blocks only, not "
                "bottleneck",
            ],
        ),
        # The same through the planner's rules: flat knobs the file writes, which convnext blocks do not take.
        (
            "resnext50_32x4d",
            ["block=convnext"],
            [
                "--set block=convnext: groups: groups shapes bottleneck and regnet blocks only; this spec also has "
                "convnext blocks",
                "--set block=convnext: width_per_group: width_per_group shapes bottleneck blocks only; this spec "
                "also has convnext blocks",
            ],
        ),
        # A limit an override's value passes, found where the walk reaches it.
        ("convnext_tiny", ["block.expansion=1000000"], ["--set block.expansion=1000000: stages.1: the network"]),
        # Of several overrides, the one after which the problem appears.
        (
            "convnext_tiny",
            ["stages.0.depth=2", "block.kernel=6", "head.num_classes=10"],
            ["--set block.kernel=6: block.kernel: a depthwise kernel of 6 has no centre"],
        ),
        ("convnext_tiny", ["block.groups=0"], ["--set block.groups=0: block.groups: groups shapes bottleneck"]),
        ("convnext_tiny", ["stages.0.block.type=nope"], ["--set stages.0.block.type=nope: stages.0.block: got"]),
    ],
)
def test_problems_an_override_brings_name_the_override(spec, items, messages):
    found = problems_of(lambda: load_plan(spec, overrides=items))
    assert len(found) == len(messages), found
    for line, start in zip(found, messages, strict=True):
        assert line.startswith(start), found


def test_problems_the_file_had_before_the_overrides_stay_in_the_file(write):
    path = write(
        "bad.yaml",
        "block: {type: convnext, kernel: 4}\nstem: {type: patchify, width: 8}\nstages:\n  - {depth: 1, width: 8}\n",
    )
    assert problems_of(lambda: load_plan(path)) == problems_of(
        lambda: load_plan(path, overrides=["head.num_classes=10"])
    )
    assert problems_of(lambda: load_plan(path))[0].startswith(f"{path}:1:33: block.kernel: a depthwise kernel")


def test_a_valid_override_of_the_block_kind_still_plans():
    assert load_plan("resnet50", overrides=["block=convnext"]).spec.block == "convnext"


def test_set_below_a_block_kinds_name_suggests_the_mapping_and_the_suggestion_works():
    (problem,) = problems_of(lambda: load_plan("mobilenet_v2", overrides=["block.kernel=5"]))
    assert problem == (
        "--set block.kernel=5: block: is a single value ('inverted_residual'), it has no fields to set; "
        "write the kind as a mapping: --set 'block={type: inverted_residual, kernel: 5}'"
    )
    suggested = problem.rsplit("--set ", 1)[1].strip("'")
    assert load_plan("mobilenet_v2", overrides=[suggested]).spec.block.kernel == 5


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


# ---- the spec language and design spaces: no other file echoed, every path bounded, located errors ----


def cli_run(*args) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from archspec.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        "root: $6$saltsalt$hashhash\ndaemon: '*'\n",  # a mapping of foreign keys
        "aws_access_key_id: AKIAEXAMPLE\n[default]\n",  # not even YAML
        "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/sbin/nologin\n",  # /etc/passwd's form
        "- hunter2\n- hunter3\n",  # a list
    ],
)
def test_a_file_that_is_not_a_spec_is_refused_without_echoing_it(tmp_path, secret):
    (tmp_path / "secret").write_text(secret)
    child = tmp_path / "child.yaml"
    child.write_text("extends: secret\n")
    for target in (child, tmp_path / "secret"):
        for command in ("validate", "show"):
            code, out, err = cli_run(command, target)
            assert code == 1 and out == ""
            assert len(err.strip().splitlines()) == 1, err
            for word in ("root", "hunter", "AKIA", "daemon", "bash", "hash"):
                assert word not in err.replace(str(tmp_path), ""), err


def test_a_spec_with_some_unknown_keys_still_gets_its_did_you_mean(write):
    path = write("typo.yaml", "stagse: []\nblock: basic\n")
    code, _, err = cli_run("validate", path)
    assert code == 1 and "unknown key `stagse`" in err


@pytest.mark.parametrize("text", ["1e99999999", "1e400", "1" + "0" * 5000, "1.0e+400", ".inf", ".nan"])
def test_huge_quantities_are_refused_at_once_everywhere(write, text):
    space = write("q.yaml", f"extends: resnet20\nconstraints:\n  flops: [0, {text}]\n")
    start = time.perf_counter()
    code, _, err = cli_run("validate", space)
    assert code == 1 and "constraints.flops" in err and err.startswith(f"{space}:3:"), err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli_run("fit", "resnet20", "--flops", text)
    assert code == 2 and err.startswith(f"--flops {text[:30]}"), err
    assert time.perf_counter() - start < 30  # milliseconds in fact; a hang would be minutes


def test_a_grid_that_cannot_be_formed_is_located_and_does_not_hide_the_other_files(write):
    bad = write(
        "grid.yaml",
        "block: basic\nstages:\n  - {depth: {range: [1, 3], step: 1.0e-30}, width: {range: [1, .inf]}}\n"
        "  - {depth: 1, width: {range: [8, 100000000000000000000000000000000000000000], multiple_of: 8}}\n",
    )
    code, out, err = cli_run("validate", bad, "resnet20")
    assert code == 1 and "resnet20: ok" in out
    lines = err.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{bad}:3:13", f"{bad}:3:60", f"{bad}:4:31"], lines
    assert "make more than 1e+15 values" in lines[0] and "between -1e18 and 1e18" in lines[1]


def test_union_labels_never_reach_the_user(write):
    path = write("u.yaml", "block: basic\nstages:\n  - {depth: {range: [one, 3]}, width: {log_range: [8, [1]]}}\n")
    code, _, err = cli_run("validate", path)
    assert code == 1
    assert ".int" not in err and ".float" not in err, err
    assert "stages.0.depth.range.0: expected a number, got the text 'one'" in err


REGNET_ZERO_INNER = """\
input: {channels: 3, size: 224}
stem: {type: simple, width: 32}
block: regnet
stages:
  regnet: {depth: {range: [3, 6]}, w0: 8, wa: 8.0, wm: 2.0, group_width: 8, bottleneck_ratio: 30}
"""


def test_regnet_numbers_that_leave_no_inner_channel_are_located_in_validate_and_sample(write, tmp_path):
    plain = write("plain.yaml", REGNET_ZERO_INNER.replace("{range: [3, 6]}", "4"))
    code, _, err = cli_run("validate", plain)
    assert code == 1 and "stages.regnet.bottleneck_ratio: a stage of width 8" in err
    space = write("space.yaml", REGNET_ZERO_INNER)
    code, _, err = cli_run("sample", space, "-n", "2", "--out", tmp_path / "out", "--jobs", "1")
    assert code == 1 and "leaves no inner channel" in err and "every one is invalid" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stages,values", [(500, 19), (90, 199)])
def test_a_large_space_validates_in_time_proportional_to_its_size(write, stages, values):
    choice = ", ".join(str(v) for v in range(1, values + 1))
    text = "block: basic\ninput: {channels: 3, size: 32}\nstages:\n" + "".join(
        f"  - {{depth: {{choice: [{choice}]}}, width: 16}}\n" for _ in range(stages)
    )
    path = write("big.yaml", text)
    assert len(text) > 40_000
    start = time.perf_counter()
    code, out, _ = cli_run("validate", path)
    # Well under a second on a quiet machine; the bound leaves room for a busy one (the quadratic way took 100 s).
    assert code == 0 and f"{stages} distributions" in out
    assert time.perf_counter() - start < 20


def test_probes_in_rounds_still_name_the_single_bad_value(write):
    path = write(
        "probe.yaml",
        "block: basic\nstages:\n  - {depth: {choice: [1, 2, 0]}, width: {choice: [8, 16, 24]}}\n"
        "  - {depth: 1, width: {choice: [8, -4]}}\n",
    )
    code, _, err = cli_run("validate", path)
    assert code == 1
    assert err.strip().splitlines() == [
        f"{path}:3:29: stages.0.depth: expected a value of at least 1, got 0",
        f"{path}:4:36: stages.1.width: expected a value of at least 1, got -4",
    ]


def test_spec_space_and_samples_inputs_never_block_on_a_fifo_or_read_a_device(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    child = tmp_path / "child.yaml"
    child.write_text("extends: spec.yaml\n")
    cases = [
        ("validate", fifo),
        ("validate", child),
        ("sample", fifo, "-n", "1", "--out", tmp_path / "s"),
        ("plot-samples", fifo, "--out", tmp_path / "p.png"),
        ("plot-samples", "/dev/zero", "--out", tmp_path / "p.png"),
    ]
    for argv in cases:
        # In a subprocess with a timeout: a blocked open would hang the test run, not fail it.
        command = [sys.executable, "-m", "archspec", *map(str, argv)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 1, (argv, result.stderr)
        assert "not a regular file" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sample_refuses_a_plain_spec_up_front(tmp_path):
    code, _, err = cli_run("sample", "resnet20", "-n", "3", "--out", tmp_path / "o")
    assert code == 1 and "cannot give 3 distinct samples: the space draws nothing, it is one spec" in err
    assert not (tmp_path / "o").exists()


def test_an_extends_chain_too_long_is_said_to_be_a_chain(tmp_path):
    for i in range(80):
        (tmp_path / f"c{i}.yaml").write_text(f"extends: c{i + 1}.yaml\n" if i < 79 else "extends: resnet20\n")
    code, _, err = cli_run("validate", tmp_path / "c0.yaml")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "the `extends` chain from" in err and "is longer than 64 files" in err and "nest" not in err


def test_a_long_list_without_aliases_is_not_blamed_on_aliases(write):
    path = write("long.yaml", "stages:\n  - {depth: 1, width: 8, x: [" + ", ".join(["1"] * 20_500) + "]}\n")
    code, _, err = cli_run("validate", path)
    assert code == 1 and "document holds more than 20000 values" in err
    assert "alias" not in err.replace(str(path), "")


def test_set_names_the_value_it_gave_not_the_one_it_replaced():
    for value in (".inf", "1.0e+400", "2.5"):
        code, _, err = cli_run("flops", "resnet20", "--set", f"stages.0.depth={value}")
        assert code == 1 and err.strip().endswith(f"got the number {value}"), err


def test_diff_shows_the_values_show_prints():
    code, out, _ = cli_run("diff", "resnet50", "resnext50_32x4d")
    assert code == 0 and "groups: null -> 32" in out
    code, out, _ = cli_run("show", "resnet50")
    assert "groups: null" in out


def test_control_characters_in_an_output_path_are_escaped_in_the_wrote_line(tmp_path):
    out = tmp_path / "a\x1b[31mb\nc"
    code, _, err = cli_run("sample", ROOT / "specs" / "spaces" / "anynetx_c.yaml", "-n", "2", "--out", out)
    assert code == 0, err
    wrote = err.strip().splitlines()[-1]
    assert wrote.startswith("wrote 2 specs to ") and "\\x1b[31mb\\nc" in wrote and "\x1b" not in err


def test_files_under_a_name_that_is_not_utf8_are_read_back(tmp_path):
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff"))
    code, _, err = cli_run("sample", ROOT / "specs" / "spaces" / "anynetx_c.yaml", "-n", "2", "--out", folder)
    assert code == 0, err
    assert "\\udcff" in err
    code, _, err = cli_run("validate", folder / "anynetx_c-0001.yaml")
    assert code == 0, err
    code, _, err = cli_run("fit", "resnet20", "--flops", "80M", "--out", folder / "fit.yaml")
    assert code == 0, err
    code, _, err = cli_run("flops", folder / "fit.yaml")
    assert code == 0, err


def test_fit_never_writes_a_spec_that_extends_itself(tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text("extends: resnet20\nname: mine\n")
    before = spec.read_text()
    code, _, err = cli_run("fit", spec, "--flops", "80M", "--out", spec, "--force")
    assert code == 2 and "is the spec being fitted" in err
    assert spec.read_text() == before


def test_fit_counts_the_parent_its_written_file_extends(tmp_path, monkeypatch):
    # A file named like the stock spec beside --out must not become the parent of the written spec.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "resnet20").write_text("block: basic\nstages: [{depth: 1, width: 8}]\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli_run("fit", "resnet20", "--flops", "80M", "--out", "out/fit.yaml")
    assert code == 0, err
    code, out, err = cli_run("flops", "out/fit.yaml", "--format", "json")
    assert code == 0, err
    import json as json_module

    flops = json_module.loads(out)[0]["flops"]
    assert abs(flops / 80e6 - 1) < 0.02, flops


def test_fit_out_through_a_symbolic_link_works(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "elsewhere" / "link")
    spec = tmp_path / "mine.yaml"
    spec.write_text("extends: resnet20\nname: mine\n")
    out = tmp_path / "elsewhere" / "link" / "fit.yaml"
    code, _, err = cli_run("fit", spec, "--flops", "80M", "--out", out)
    assert code == 0, err
    code, _, err = cli_run("validate", out)
    assert code == 0, err


def test_sample_force_checks_every_target_before_replacing_any(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "samples.csv").write_text("old")
    (out / "samples.json").mkdir()  # a folder where a file must go: refused, and nothing replaced before it
    code, _, err = cli_run("sample", ROOT / "specs" / "spaces" / "anynetx_c.yaml", "-n", "2", "--out", out, "--force")
    assert code == 1 and "samples.json" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "samples.csv", "samples.json"]
    assert (out / "samples.csv").read_text() == "old"


def test_write_folder_is_all_or_nothing(tmp_path):
    from archspec.files import write_folder

    target = tmp_path / "new"
    with pytest.raises(SpecError):
        write_folder(target, [("a.yaml", b"a"), ("missing/b.yaml", b"b")], force=False)
    assert not target.exists() and os.listdir(tmp_path) == []
    target.mkdir()
    (target / "a.yaml").write_text("old")
    with pytest.raises(SpecError):
        write_folder(target, [("a.yaml", b"a"), ("missing/b.yaml", b"b")], force=True)
    assert os.listdir(target) == ["a.yaml"] and (target / "a.yaml").read_text() == "old"


@pytest.mark.parametrize("signal_number", [pytest.param(2, marks=pytest.mark.slow), 15])  # SIGINT in the slow tier
def test_an_interrupted_sample_leaves_the_whole_output_or_nothing(tmp_path, signal_number):
    space = ROOT / "specs" / "spaces" / "anynetx_c.yaml"
    for delay in (0.8, 1.8):
        out = tmp_path / f"s{delay}"
        command = [sys.executable, "-m", "archspec", "sample", str(space), "-n", "150", "--out", str(out)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
        time.sleep(delay)
        process.send_signal(signal_number)
        process.communicate(timeout=120)
        if out.exists():
            names = sorted(os.listdir(out))
            assert len(names) == 152 and "samples.json" in names, names
        assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture(scope="module")
def samples_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples") / "s"
    space = out.parent / "blocks.yaml"
    space.write_text(
        "extends: resnet20\nstages: {0: {depth: {choice: [1, 2, 3]}, block: {choice: [basic, bottleneck]}}}\n"
    )
    code, _, err = cli_run("sample", space, "-n", "3", "--out", out, "--jobs", "1")
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "where,value,message",
    [
        (("samples", 0, "params"), "null", "samples.0.params: expected a count (an integer of at least 0), got null"),
        (("samples", 1, "flops"), '"12"', "samples.1.flops: expected a count (an integer of at least 0), got the text"),
        (("samples", 0, "macs"), "{}", "samples.0.macs: expected a count (an integer of at least 0), got a mapping"),
        (("statistics", "drawn"), "[1]", "statistics.drawn: expected a count (an integer of at least 0), got a list"),
        (("samples", 2, "depth"), "-3", "samples.2.depth: expected a count from 0 to 1e+18, got -3"),
        (("samples", 0, "params"), "9" * 5000, "samples.0.params: expected a count (an integer of at least 0), got an"),
        (
            ("samples", 0, "activations"),
            "NaN",
            "samples.0.activations: expected a count (an integer of at least 0), got NaN",
        ),
        (("statistics", "refused_by"), '{"flops": Infinity}', "statistics.refused_by.flops: expected a count"),
        (("samples",), "[]", "samples: the file holds no samples; there is nothing to draw"),
        (("samples", 0, "fields"), '{"x": [1]}', "samples.0.fields.x: expected a drawn value, got a list"),
    ],
)
def test_plot_samples_checks_every_field_of_a_samples_file(samples_folder, tmp_path, where, value, message):
    import json as json_module

    data = json_module.loads((samples_folder / "samples.json").read_text())
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = "@ODD@"
    bad = tmp_path / "bad.json"
    bad.write_text(json_module.dumps(data).replace('"@ODD@"', value))
    code, _, err = cli_run("plot-samples", bad, "--out", tmp_path / "p.png")
    assert code == 1 and err.strip().startswith(f"{bad}: {message}"), err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "p.png").exists()


def test_edf_of_a_field_that_is_not_a_number_in_every_sample_says_so(samples_folder, tmp_path):
    code, _, err = cli_run("plot-samples", samples_folder, "--edf", "stages.0.block", "--out", tmp_path / "e.png")
    assert code == 2 and "--edf stages.0.block: edf: not a number in 3 of the 3 samples" in err, err
    assert not (tmp_path / "e.png").exists()


def test_set_below_a_block_kinds_name_suggests_a_mapping_only_where_the_kind_takes_the_field():
    (problem,) = problems_of(lambda: load_plan("resnet50", overrides=["block.kernel=3"]))
    assert problem == (
        "--set block.kernel=3: block: is a single value ('bottleneck'), it has no fields to set; bottleneck blocks "
        "take no kernel (convnext, inverted_residual and mbconv blocks do)"
    )
