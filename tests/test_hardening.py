"""Unusual and hostile input: every path that allocates asks the memory guard, writes never replace what they must
not, nothing read back is trusted, and no input ends in an internal error, a traceback or a wrong success."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SMALL_TRAIN

import archspec
from archspec.errors import SpecError


def problems_of(action) -> list[str]:
    try:
        action()
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    raise AssertionError("no SpecError")


def clean(result, code: int = 1) -> str:
    """The one-line message of a failed command, after checking its exit code and that nothing leaked."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result.stderr.strip()


@pytest.fixture
def tiny_memory(monkeypatch):
    """The guard sees a machine with 1 KiB free."""
    import archspec.nn.guard

    monkeypatch.setattr(archspec.nn.guard, "available_bytes", lambda device: 1024)


# --- the memory guard, on every path that allocates ----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["build", "resnet20", "--device", "cpu"],
        ["export", "resnet20", "--format", "torchscript", "--out", "{tmp}/m.pt"],
        ["bench", "resnet20", "--device", "cpu", "--batch", "2", "--iters", "1", "--warmup", "0"],
        ["train", "resnet20", "--data", "synthetic:64", "--device", "cpu", "--epochs", "1", "--batch", "8"],
        ["flops", "resnet20", "--counter", "fvcore"],
    ],
    ids=["build", "export", "bench", "train", "flops-fvcore"],
)
def test_every_command_that_allocates_asks_the_memory_guard_first(cli, tmp_path, tiny_memory, args):
    message = clean(cli(*[a.format(tmp=tmp_path) for a in args]))
    assert "needs about" in message and "GiB free" in message and message.endswith("or pass --force")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["flops", "resnet20", "--counter", "fvcore"],
        ["flops", "torchvision:resnet18", "--vs", "resnet18"],
        ["bench", "resnet20", "--vs", "torchvision:resnet18", "--device", "cpu", "--batch", "2", "--iters", "1"],
    ],
    ids=["flops-fvcore", "flops-library-row", "bench-library-peer"],
)
def test_force_takes_every_command_past_the_memory_guard(cli, tiny_memory, args):
    refused = cli(*args)
    assert clean(refused).endswith("pass --force")
    passed = cli(*args, "--force")
    assert passed.exit_code == 0, passed.output


def test_loading_a_checkpoint_asks_the_memory_guard(tmp_path, tiny_memory):
    from archspec.nn.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "r20.pt"
    save_checkpoint(archspec.build("resnet20", device="cpu", force=True), archspec.load_spec("resnet20"), path)
    (message,) = problems_of(lambda: load_checkpoint(path, device="cpu"))
    assert message.startswith(f"{path}: stages: needs about") and "parameters" in message
    load_checkpoint(path, device="cpu", force=True)
    (message,) = problems_of(lambda: archspec.load_checkpoint(path, device="cpu"))
    assert message.startswith(f"{path}: stages: needs about")
    archspec.load_checkpoint(path, device="cpu", force=True)


def test_building_in_python_asks_the_memory_guard(tiny_memory):
    (message,) = problems_of(lambda: archspec.build("resnet20", device="cpu"))
    assert message.startswith("resnet20: stages: needs about") and message.endswith("or pass --force")
    model = archspec.build("resnet20", device="cpu", force=True)
    assert sum(p.numel() for p in model.parameters()) == archspec.count("resnet20").params


def test_a_meta_build_has_every_shape_and_no_storage_and_takes_no_weights(tiny_memory):
    import torchvision

    model = archspec.build("regnet_y_128gf", device="meta")  # 645M parameters in no memory, past the guard
    assert all(tensor.is_meta for tensor in model.state_dict().values())
    assert sum(p.numel() for p in model.parameters()) == archspec.count("regnet_y_128gf").params
    with torch.device("meta"):
        reference = torchvision.models.wide_resnet101_2().state_dict()
    state = archspec.build("wide_resnet101_2", device="meta").state_dict()
    assert [(k, v.shape) for k, v in state.items()] == [(k, v.shape) for k, v in reference.items()]
    (message,) = problems_of(lambda: archspec.build("resnet20", device="meta", weights="w.pth"))
    assert message == "w.pth: device: a meta model has no storage to load weights into; build on cpu or cuda"


def test_a_huge_synthetic_data_set_is_refused_before_it_is_made(cli):
    message = clean(cli("train", "resnet20", "--data", "synthetic:100000000", "--device", "cpu", "--epochs", "1"))
    assert "--data synthetic:100000000" in message and "needs about" in message


def test_a_crafted_checkpoint_is_checked_against_its_plan_before_anything_is_built(tmp_path):
    """A small file whose embedded spec is enormous: refused by its shapes, not after allocating them."""
    import time

    from archspec.nn.checkpoint import load_checkpoint, state_digest

    state = {"conv1.weight": torch.zeros(1)}
    # About 2.2e9 parameters (9 GB of float32): plausible, but far too much to allocate to find out.
    spec = archspec.load_spec("resnet152").model_dump(mode="json", exclude={"extends"}) | {
        "stages": [{"depth": 30, "width": 1024}] * 4
    }
    path = tmp_path / "crafted.pt"
    torch.save(
        {
            "format": "archspec-checkpoint",
            "version": 2,
            "spec": spec,
            "state_dict": state,
            "sha256": state_digest(state),
        },
        path,
    )
    started = time.perf_counter()
    (message,) = problems_of(lambda: load_checkpoint(path, device="cpu"))
    assert message.startswith(f"{path}: state_dict: does not fit resnet152:")
    assert time.perf_counter() - started < 30


# --- writes ----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_force_replaces_regular_files_only(cli, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    message = clean(cli("schema", "--out", fifo, "--force"))
    assert message.endswith(
        "is not a regular file (a device, FIFO or socket); archspec replaces regular files only, even with --force"
    )
    assert fifo.is_fifo()


def test_a_folder_as_out_is_said_to_be_a_folder_before_any_work(cli, tmp_path):
    assert (
        clean(cli("build", "resnet20", "--device", "cpu", "--out", tmp_path, "--force"))
        == f"{tmp_path}: --out: is a folder; give a file name"
    )
    assert clean(cli("validate", tmp_path)) == f"{tmp_path}: (document): is a folder, not a spec file"


def test_of_two_writers_racing_for_one_name_the_second_fails(tmp_path):
    from archspec.files import atomic_write

    target = tmp_path / "out.txt"

    def meanwhile(handle):
        handle.write(b"second")
        target.write_bytes(b"first")  # another writer got there while this one was writing

    (message,) = problems_of(lambda: atomic_write(target, meanwhile))
    assert message.endswith("file exists (another writer created it meanwhile); pass --force to overwrite it")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_long_but_valid_file_name_gets_a_temporary_name_that_fits(tmp_path):
    from archspec.files import atomic_write

    target = tmp_path / ("n" * 250 + ".json")
    atomic_write(target, lambda handle: handle.write(b"{}"))
    assert target.read_bytes() == b"{}"


def test_a_file_name_too_long_for_the_file_system_is_one_line(cli, tmp_path):
    message = clean(cli("schema", "--out", tmp_path / ("n" * 300)))
    assert message.endswith("--out: the file name is too long for the file system")
    assert clean(cli("validate", "s" * 300 + ".yaml")).endswith("no spec file '" + "s" * 197 + "...'")


def test_sigterm_during_a_write_leaves_no_temporary_file_and_exits_143(tmp_path):
    target = tmp_path / "schema.json"
    probe = textwrap.dedent(
        f"""
        import os, signal, time
        import archspec.files as files
        real = files.atomic_write
        def slow(path, write, **kwargs):
            def stalled(handle):
                handle.write(b"partial")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
            real(path, stalled, **kwargs)
        files.atomic_write = slow
        from archspec.cli.application import run
        run(["schema", "--out", {str(target)!r}])
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 143, result.stderr
    assert result.stderr.strip() == "archspec: terminated"
    assert list(tmp_path.iterdir()) == []


# --- train --resume trusts nothing in the run folder ----------------------------------------------


@pytest.fixture
def finished_run(cli, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "train",
        "resnet20",
        *SMALL_TRAIN,
        "--epochs",
        "2",
        "--out",
        out,
        "--set",
        "stages=[{depth: 1, width: 16}]",
    )
    assert result.exit_code == 0, result.output
    return out


RESUME = [
    *SMALL_TRAIN,
    "--set",
    "stages=[{depth: 1, width: 16}]",
    "--resume",
]


def test_a_spec_name_in_run_json_cannot_reach_outside_the_folder(cli, finished_run):
    record = json.loads((finished_run / "run.json").read_text())
    record["specs"] = ["../../escaped"]
    (finished_run / "run.json").write_text(json.dumps(record))
    message = clean(cli("train", "resnet20", "--epochs", "2", "--out", finished_run, *RESUME))
    assert message == (
        f"--out {finished_run}: out: run.json names a spec '../../escaped' cannot name a folder; give the spec "
        "a name without slashes"
    )
    assert not (finished_run.parent.parent / "escaped").exists()


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            lambda r: r.update(recipe="fast"),
            "run.json: `recipe` must have exactly epochs, batch, lr, momentum, weight_decay, schedule, seed, amp",
        ),
        (
            lambda r: r["recipe"].update(lr="0.1"),
            "run.json: `recipe` is not a valid recipe (needs a positive, finite learning rate)",
        ),
        (lambda r: r.update(specs="resnet20"), "run.json: `specs` must be a list of spec names"),
        (lambda r: r.update(format="other"), "run.json is not the record of an archspec train run"),
    ],
)
def test_a_tampered_run_json_is_one_line(cli, finished_run, change, expected):
    record = json.loads((finished_run / "run.json").read_text())
    change(record)
    (finished_run / "run.json").write_text(json.dumps(record))
    assert (
        clean(cli("train", "resnet20", "--epochs", "2", "--out", finished_run, *RESUME))
        == f"--out {finished_run}: out: {expected}"
    )


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda s: s.update(epoch="2"), "the saved state's epoch is missing or not a positive whole number"),
        (lambda s: s.update(history=[]), "the saved metrics do not match the saved epoch"),
        (lambda s: s.update(rng=torch.zeros(3)), "the saved random-number state is missing or damaged"),
        (
            lambda s: s["model"].pop("fc.weight"),
            "the saved weights does not fit resnet20: missing 1 tensor: the head (fc.weight)",
        ),
        (
            lambda s: s.update(optimizer={"state": {}, "param_groups": []}),
            "the saved optimizer state is not one group over the model's 11 tensors",
        ),
    ],
)
def test_a_tampered_state_is_one_line(cli, finished_run, change, expected):
    path = finished_run / "resnet20" / "state.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    message = clean(cli("train", "resnet20", "--epochs", "3", "--out", finished_run, *RESUME))
    assert message.startswith(f"{path}: resume: {expected}") and message.endswith("delete it to restart this spec")


def test_a_resumed_state_past_the_runs_epochs_is_refused_and_more_epochs_extend_the_run(cli, finished_run):
    assert clean(cli("train", "resnet20", "--epochs", "1", "--out", finished_run, *RESUME)) == (
        "--epochs 1: epochs: the saved state of resnet20 is at epoch 2, past --epochs 1; resume with --epochs 2 or more"
    )
    result = cli("train", "resnet20", "--epochs", "3", "--out", finished_run, *RESUME)
    assert result.exit_code == 0, result.output
    assert "resuming after epoch 2/3" in result.stderr
    assert len((finished_run / "resnet20" / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_second_run_on_one_folder_refuses_while_the_first_holds_it(cli, finished_run):
    lock = finished_run / ".archspec-train.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "now"}))
    message = clean(cli("train", "resnet20", "--epochs", "3", "--out", finished_run, *RESUME))
    assert f"another archspec train (process {os.getpid()} on " in message and "is writing to this folder" in message
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename, "started": "long ago"}))
    result = cli("train", "resnet20", "--epochs", "3", "--out", finished_run, *RESUME)
    assert result.exit_code == 0, result.output
    assert "removing the lock of a run that ended without releasing it" in result.stderr
    assert not lock.exists()


# --- no internal errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item,message",
    [
        ("stages.².depth=2", "--set stages.².depth=2: stages.²: is a list; use a number from 0 to 2, not '²'"),
        (
            "name=a\nb",
            (
                "--set name=a\\nb: name: a --set value is one line; write lists and mappings in flow style, like [1, "
                "2] or {a: 1}"
            ),
        ),
        (
            "stages.0.width=" + "9" * 40,
            "--set stages.0.width="
            + "9" * 40
            + ": stages.0.width: expected a value of at most 16777216, got 999999999999999999999...",
        ),
    ],
)
def test_odd_overrides_are_located_messages(item, message):
    assert problems_of(lambda: archspec.load_plan("resnet20", overrides=[item])) == [message]


def test_integers_too_large_to_convert_are_one_line(cli, write):
    path = write("huge.yaml", "stages:\n  - {depth: 1, width: " + "9" * 5000 + "}\n")
    assert "a number of 5,000 digits is far too large" in clean(cli("validate", path))
    seed = subprocess.run(
        [sys.executable, "-m", "archspec", "train", "resnet20", "--seed", str(10**20)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert (
        seed.returncode == 2
        and seed.stderr.count("\n") == 1
        and "--seed" in seed.stderr
        and "Traceback" not in seed.stderr
    )


def test_nul_bytes_in_names_are_spec_errors():
    assert problems_of(lambda: archspec.load_plan("res\x00net.yaml"))[0].startswith(
        "res\\x00net.yaml: (document): no spec file"
    )


def test_mathtext_in_titles_and_names_is_drawn_as_text(cli, tmp_path):
    out = tmp_path / "chart.svg"
    result = cli("plot", "resnet20", "--set", "name=$\\x{$", "--title", "cost $\\x{$ 100%", "--out", out)
    assert result.exit_code == 0, result.output
    assert "$\\x{$" in out.read_text()


def test_a_closed_stdout_ends_quietly():
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141)
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_ctrl_c_while_archspec_starts_is_exit_130_without_a_traceback():
    probe = textwrap.dedent(
        """
        import sys, types
        broken = types.ModuleType("archspec.cli.application")
        def run():
            raise KeyboardInterrupt
        broken.run = run
        sys.modules["archspec.cli.application"] = broken
        from archspec.cli import main
        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (130, "archspec: interrupted\n")


_CTRL_C_AGAIN = """
import atexit, io, os, signal, sys

def ctrl_c(kill=os.kill, pid=os.getpid(), sigint=signal.SIGINT):
    kill(pid, sigint)

def mark(name, make=os.open, close=os.close, flags=os.O_CREAT | os.O_WRONLY):  # works while modules are freed
    close(make({marks!r} + "/" + name, flags))

# The first Ctrl-C: in the middle of writing --out.
import archspec.files as files
real = files.atomic_write
def interrupted_write(path, write, **kwargs):
    def half(handle):
        handle.write(b"{{partial")
        handle.flush()
        ctrl_c()
    real(path, half, **kwargs)
files.atomic_write = interrupted_write

class Again(io.FileIO):  # stderr: Ctrl-C again each time archspec says it was interrupted
    def write(self, data):
        written = super().write(data)
        if {when!r} == "message" and b"interrupted" in bytes(data):
            mark("message")
            ctrl_c()
        return written
sys.stderr = io.TextIOWrapper(io.BufferedWriter(Again(2, "wb", closefd=False)), line_buffering=True)

if {when!r} == "atexit":  # while the exit handlers run
    atexit.register(lambda: (mark("atexit"), ctrl_c()))

class AtShutdown:  # while the interpreter frees the modules, after Python put SIGINT's default action back
    def __del__(self, mark=mark, ctrl_c=ctrl_c):
        mark("shutdown")
        ctrl_c()
if {when!r} == "shutdown":
    kept = AtShutdown()

sys.argv = ["archspec", "schema", "--out", {out!r}]
from archspec.cli import main
main()
"""


@pytest.mark.parametrize("when", ["message", "atexit", "shutdown"])
def test_ctrl_c_again_after_archspec_says_interrupted_still_exits_130(tmp_path, when):
    """A second Ctrl-C as the message appears, while the exit handlers run or while the interpreter shuts down
    changes nothing: exit 130, the message last, and nothing written."""
    import signal

    out, marks = tmp_path / "out", tmp_path / "marks"
    out.mkdir()
    marks.mkdir()
    probe = _CTRL_C_AGAIN.format(when=when, out=str(out / "schema.json"), marks=str(marks))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        # Python ignores SIGINT in a process whose parent ignores it; a terminal's Ctrl-C reaches a fresh one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert (result.returncode, result.stderr) == (130, "archspec: interrupted\n")
    assert os.listdir(marks) == [when], "the second Ctrl-C was not sent"
    assert os.listdir(out) == [], "a partial file or a temporary file was left"


@pytest.mark.parametrize(
    "tensor,kind",
    [
        (lambda: torch.zeros(16, 3, 3, 3).to_sparse(), "a sparse_coo tensor; archspec loads dense tensors only"),
        (
            lambda: torch.zeros(16, 3, 3, 3, dtype=torch.complex64),
            "a complex64 tensor; archspec's models are real-valued",
        ),
    ],
)
def test_sparse_and_complex_tensors_in_a_checkpoint_are_refused(tmp_path, tensor, kind):
    from archspec.nn.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "r20.pt"
    save_checkpoint(archspec.build("resnet20", device="cpu"), archspec.load_spec("resnet20"), path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["conv1.weight"] = tensor()
    torch.save(payload, path)
    assert problems_of(lambda: load_checkpoint(path, device="cpu")) == [
        f"{path}: state_dict: key 'conv1.weight' holds {kind}"
    ]


def test_a_meta_tensor_in_a_checkpoint_is_refused():
    from archspec.nn.checkpoint import checked_tensors

    assert problems_of(lambda: checked_tensors({"w": torch.zeros(2, device="meta")}, "f.pt")) == [
        "f.pt: state_dict: key 'w' holds a meta tensor (a shape without data)"
    ]


# --- training data that must not pass --------------------------------------------------------------


def _write_cifar(folder: Path, labels=None, images: int = 20) -> None:
    rng = np.random.RandomState(1)
    folder.mkdir(exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.randint(0, 256, (images, 3072)).astype(np.uint8),
            b"labels": rng.randint(0, 10, images).tolist(),
        }
        if labels is not None and name == "data_batch_2":
            batch[b"labels"] = labels
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize(
    "labels,message",
    [
        ([3] * 19 + [10], "has labels from 3 to 10; CIFAR-10's classes are 0 to 9"),
        ([1] * 19, "holds 20 images but 19 labels"),
        ([0.5] * 20, "the labels are not a list of whole numbers"),
    ],
)
def test_cifar_batches_with_bad_labels_are_refused_when_loaded(cli, tmp_path, labels, message):
    _write_cifar(tmp_path, labels)
    result = clean(cli("train", "resnet20", "--data", f"cifar10:{tmp_path}", "--device", "cpu", "--epochs", "1"))
    assert result.endswith(message) and "data_batch_2" in result


def _image_folder(root: Path, per_class: int) -> Path:
    from PIL import Image

    rng = np.random.RandomState(0)
    for label in ("ant", "bee"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)).save(root / label / f"{i}.png")
    return root


def test_an_image_folder_with_no_held_out_images_is_refused(cli, tmp_path):
    root = _image_folder(tmp_path / "images", per_class=2)
    message = clean(
        cli("train", "resnet20", "--data", f"imagefolder:{root}", "--device", "cpu", "--epochs", "1", "--batch", "2")
    )
    assert "too few images to hold a fifth out" in message


def test_unreadable_and_bomb_images_are_named(cli, tmp_path, monkeypatch):
    from PIL import Image

    root = _image_folder(tmp_path / "images", per_class=10)
    (root / "bee" / "broken.png").write_bytes(b"\x89PNG not really")
    message = clean(
        cli("train", "resnet20", "--data", f"imagefolder:{root}", "--device", "cpu", "--epochs", "1", "--batch", "4")
    )
    assert "cannot read image" in message and "broken.png" in message
    (root / "bee" / "broken.png").unlink()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # every 8x8 image is now a "bomb"
    message = clean(
        cli("train", "resnet20", "--data", f"imagefolder:{root}", "--device", "cpu", "--epochs", "1", "--batch", "4")
    )
    assert "is too large to decode safely (a decompression bomb?)" in message


@pytest.mark.parametrize(
    "option,value",
    [("--lr", "nan"), ("--lr", "inf"), ("--weight-decay", "inf"), ("--weight-decay", "nan"), ("--momentum", "nan")],
)
def test_non_finite_training_numbers_are_refused(cli, option, value):
    assert clean(cli("train", "resnet20", "--device", "cpu", option, value)).startswith(f"{option} {value}: ")


def test_a_loss_that_becomes_nan_stops_the_run(cli, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "train",
        "plain20",
        *SMALL_TRAIN,
        "--epochs",
        "3",
        "--lr",
        "1e30",
        "--out",
        out,
        "--set",
        "norm=none",
    )
    message = clean(result)
    assert "training loss became" in message and "training stopped" in message
    assert not (out / "plain20" / "model.pt").exists() and not (out / "plain20" / "state.pt").exists()
    assert (out / "plain20" / "metrics.jsonl").exists()


# --- modelling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "silu", "gelu"])
@pytest.mark.parametrize("stem", [{"type": "cifar", "width": 16}, {"type": "none"}], ids=["stem", "no-stem"])
def test_no_block_modifies_its_input(activation, stem):
    spec = {
        "stem": stem,
        "preact": True,
        "norm": "none",
        "activation": activation,
        "input": {"channels": 16 if stem["type"] == "none" else 3, "size": 32},
    }
    spec["stages"] = [{"depth": 2, "width": 16}, {"depth": 1, "width": 32}]
    model = archspec.build(spec, device="cpu").eval()
    x = torch.randn(2, spec["input"]["channels"], 32, 32)
    before = x.clone()
    with torch.no_grad():
        model(x)
    assert torch.equal(x, before)
    block = model.layer1[0]
    h = torch.randn(2, 16, 32, 32)
    kept = h.clone()
    with torch.no_grad():
        y = block(h)
        # F(x) + x with the raw input as the identity shortcut.
        expected = (
            torch.nn.Sequential(*[getattr(block, name) for name in block._pre + block._body])(kept.clone()) + kept
        )
    assert torch.equal(h, kept) and torch.allclose(y, expected)


@pytest.mark.parametrize("overrides,zeroed", [(["preact=true"], "conv2"), (["norm=none"], "conv2"), ([], "bn2")])
def test_zero_init_residual_zeroes_the_last_layer_of_each_branch(overrides, zeroed):
    model = archspec.build("resnet20", device="cpu", overrides=["zero_init_residual=true", *overrides])
    for block in model.layer2:
        assert torch.all(getattr(block, zeroed).weight == 0)
    x = torch.randn(1, 16, 32, 32)
    block = model.layer1[1]
    with torch.no_grad():
        out = block.eval()(x)
    identity = x if "preact=true" in overrides else torch.relu(x)
    assert torch.allclose(out, identity)


# --- the command line's rough edges ----------------------------------------------------------------


def test_a_baseline_that_is_also_a_modified_row_keeps_its_own_row(cli):
    rows = json.loads(
        cli("flops", "resnet50", "--vs", "resnet50", "--set", "stages.3.depth=1", "--format", "json").stdout
    )
    assert [(r["name"], r["baseline"]) for r in rows] == [("resnet50 (--set)", False), ("resnet50", True)]
    assert rows[0]["params"] < rows[1]["params"]
    same = json.loads(cli("flops", "resnet50", "--vs", "resnet50", "--format", "json").stdout)
    assert [(r["name"], r["baseline"]) for r in same] == [("resnet50", True)]


def test_csv_headers_name_what_is_printed_and_keep_the_baseline_marker(cli):
    lines = cli("flops", "resnet20", "--vs", "resnet56", "--format", "csv").stdout.splitlines()
    header = lines[0].split(",")
    assert header[:9] == ["name", "layers", "params", "FLOPs", "MACs", "paper", "baseline", "input", "counter"]
    assert (
        lines[1].split(",")[6] == "false"
        and lines[2].split(",")[:2] == ["resnet56", "56"]
        and lines[2].split(",")[6] == "true"
    )


def test_problems_are_printed_in_file_order(cli, write):
    path = write("many.yaml", "stages:\n  - {depth: 0, width: 8}\nshortcut: D\nblock: bottle\n")
    lines = clean(cli("validate", path)).splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "3", "4"]


@pytest.mark.parametrize("ref", ["specs/resnet50.yaml", "resnet50.yml"])
def test_a_path_named_like_a_stock_spec_gets_the_stock_name_as_a_hint(cli, tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    assert (
        clean(cli("validate", ref))
        == f"{ref}: (document): no spec file {ref!r}; did you mean the stock spec `resnet50` (a name, without a path)?"
    )


def test_an_unknown_name_gets_the_closest_three_not_the_whole_list(cli):
    message = clean(cli("validate", "resnet51"))
    assert message == (
        "resnet51: (document): no spec file or stock spec named 'resnet51'; did you mean `resnet56`, `resnet50` "
        "or `resnet18`?"
    )


def test_version_and_debug_after_the_command():
    version = subprocess.run([sys.executable, "-m", "archspec", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert version.stdout == f"archspec {archspec.__version__}\n"
    debug = subprocess.run(
        [sys.executable, "-m", "archspec", "validate", "nope.yaml", "--debug"], capture_output=True, text=True, cwd=ROOT
    )
    assert (
        debug.returncode == 1
        and "Traceback" in debug.stderr
        and debug.stderr.strip().endswith("nope.yaml: (document): no spec file 'nope.yaml'")
    )


def test_show_prints_a_checkpoints_spec(cli, tmp_path):
    out = tmp_path / "m.pt"
    assert cli("build", "resnet20", "--device", "cpu", "--set", "head.num_classes=7", "--out", out).exit_code == 0
    shown = cli("show", out)
    assert shown.exit_code == 0 and "num_classes: 7" in shown.stdout and "name: resnet20" in shown.stdout


# --- knobs that would do nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,line",
    [
        (
            "shortcut: A\navg_down: true\nstages:\n  - {depth: 1, width: 16}\n  - {depth: 1, width: 32, stride: 2}\n",
            "avg_down: avg_down pools before projection shortcuts, but no stage that takes it has one (shortcut "
            "option A pads with zeros; plain blocks have no shortcut); use shortcut B or C, or leave avg_down out",
        ),
        (
            "shortcut: A\nstages:\n  - {depth: 1, width: 16}\n  - {depth: 1, width: 32, stride: 2, avg_down: true}\n",
            "stages.1.avg_down: avg_down pools before a projection shortcut, but stage 2's shortcut option A has "
            "none; use shortcut B or C, or leave avg_down out",
        ),
        (
            "block: plain\ndrop_path: 0.1\nstages:\n  - {depth: 2, width: 16}\n",
            "drop_path: drop_path drops residual branches, but this spec has no residual blocks (plain blocks have "
            "no shortcut)",
        ),
    ],
)
def test_a_knob_that_would_do_nothing_is_refused(write, cli, text, line):
    path = write("bad.yaml", text)
    assert [entry.split(": ", 1)[1] for entry in clean(cli("validate", path)).splitlines()] == [line]


def test_avg_down_with_a_projecting_stage_beside_option_a_is_kept(write):
    path = write(
        "mixed.yaml",
        "shortcut: A\navg_down: true\nstages:\n  - {depth: 1, width: 64}\n"
        "  - {depth: 1, width: 128, stride: 2, shortcut: B}\n",
    )
    plan = archspec.load_plan(path)
    assert plan.spec.avg_down


# --- a checkpoint where a spec goes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet20_checkpoint(tmp_path_factory):
    from typer.testing import CliRunner

    from archspec.cli import app

    path = tmp_path_factory.mktemp("checkpoint") / "resnet20.pt"
    result = CliRunner().invoke(app, ["build", "resnet20", "--device", "cpu", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_build_takes_a_checkpoint_as_its_spec_with_its_weights(cli, resnet20_checkpoint):
    result = cli("build", resnet20_checkpoint, "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # ResNet-20's 269,722 parameters (the paper's 0.27M, counted layer by layer in published-numbers).
    assert report["name"] == "resnet20" and report["params"] == 269_722
    assert report["weights"] == f"loaded 116 tensors from {resnet20_checkpoint} (archspec checkpoint)"


def test_export_takes_a_checkpoint_as_its_spec(cli, resnet20_checkpoint, tmp_path):
    out = tmp_path / "model.ts"
    result = cli("export", resnet20_checkpoint, "--format", "torchscript", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and f"weights from {resnet20_checkpoint}" in result.stdout


def test_a_checkpoint_as_spec_takes_set_like_any_spec(cli, resnet20_checkpoint):
    result = cli("build", resnet20_checkpoint, "--device", "cpu", "--set", "head.num_classes=7", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["output_shape"] == [1, 7]
    assert "the head (fc) is left freshly initialised: the file has 10 classes, the spec 7" in report["weights"]


# --- Ctrl-C during an ONNX export -------------------------------------------------------------------


def _interrupt_export(tmp_path: Path, delay: float) -> tuple[int, str]:
    """Start `export --format onnx`, send SIGINT `delay` seconds after it says it is exporting; (status, stderr)."""
    import signal
    import time

    pytest.importorskip("onnxscript")
    out = tmp_path / "model.onnx"
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", "export", "resnet20", "--format", "onnx", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # Python ignores SIGINT in a process whose parent ignores it; a terminal's Ctrl-C reaches a fresh one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "exporting resnet20 as onnx" in line:
            break
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a partial or complete file was left"
    return process.returncode, "".join(lines) + rest


@pytest.mark.slow  # an ONNX export, interrupted at several moments
def test_ctrl_c_during_an_onnx_export_exits_130_and_writes_nothing(tmp_path):
    status, stderr = _interrupt_export(tmp_path, 0.5)
    assert status == 130, stderr
    assert stderr.strip().splitlines()[-1] == "archspec: interrupted"
    assert "Error" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 1.0, 2.0, 3.0, 4.0, 6.0])
def test_ctrl_c_at_any_point_of_an_onnx_export_exits_130(tmp_path, delay):
    status, stderr = _interrupt_export(tmp_path, delay)
    assert status == 130 and stderr.strip().splitlines()[-1] == "archspec: interrupted", stderr


@pytest.mark.parametrize("command", [("flops",), ("validate",), ("train", "--epochs", "1")])
def test_a_checkpoint_where_only_a_spec_goes_points_to_the_commands_that_take_it(cli, tmp_path, command):
    checkpoint = tmp_path / "model.pt"
    cli("build", "resnet20", "--device", "cpu", "--out", checkpoint)
    message = clean(cli(*command, checkpoint))
    assert message.startswith(f"{checkpoint}:1:1: ")
    assert "is a checkpoint (a torch file), not a spec" in message
    assert "archspec show CHECKPOINT > spec.yaml" in message and "--weights" in message
