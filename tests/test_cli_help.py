"""What people expect of a command line: --help that reads as words, shell completion, `list PATTERN`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

import archspec
from archspec.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# How click and Typer print a value's Python type when a parameter has no metavar.
PYTHON_TYPES = re.compile(
    r"\b(TEXT|INTEGER|FLOAT|PATH|BOOLEAN|FILENAME|DIRECTORY)\b|<(list\[)?(str|int|float|bool|path|Path)\]?>"
)


def sections(text: str) -> dict[str, str]:
    """The help text by section: `usage`, `Arguments`, `Options`, `Commands`."""
    parts, name = {"usage": []}, "usage"
    for line in text.splitlines():
        if re.fullmatch(r"(Arguments|Options|Commands):", line):
            name = line[:-1]
            parts[name] = []
        else:
            parts[name].append(line)
    return {key: "\n".join(lines) for key, lines in parts.items()}


@pytest.fixture(params=["", *COMMANDS], ids=["archspec", *COMMANDS])
def help_text(request, cli) -> str:
    result = cli(*([request.param] if request.param else []), "--help")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_options_show_words_not_python_types(help_text):
    options = sections(help_text).get("Options", "")
    assert not PYTHON_TYPES.search(options), PYTHON_TYPES.search(options)


def test_the_usage_line_reads_as_words(help_text):
    usage = help_text.splitlines()[0]
    assert not PYTHON_TYPES.search(usage), usage
    assert "...}..." not in usage, usage  # a repeated argument reads `{SPEC}...`


def test_arguments_show_words_not_python_types(cli):
    shown = [sections(cli(command, "--help").stdout).get("Arguments", "") for command in COMMANDS]
    assert not [text for text in shown if PYTHON_TYPES.search(text)]


def test_repeated_arguments_and_numbers_have_word_metavars(cli):
    flops = cli("flops", "--help").stdout
    assert flops.splitlines()[0].endswith("flops [OPTIONS] {MODEL}...")
    assert "--depth N " in flops and "--vs BASELINE " in flops and "--size N|HxW " in flops
    assert cli("validate", "--help").stdout.splitlines()[0].endswith("validate [OPTIONS] {SPEC}...")
    assert "--title TITLE " in cli("plot", "--help").stdout


# --- shell completion (Typer's) ----------------------------------------------------------------


def test_completion_can_be_installed_or_shown(cli):
    options = sections(cli("--help").stdout)["Options"]
    assert "--install-completion" in options and "--show-completion" in options
    script = cli("--show-completion", "bash").stdout
    assert "complete -o default -F" in script and "_COMPLETE=complete_bash" in script


def _complete(words: str) -> list[str]:
    """What bash completion offers for `words` (the installed `archspec` script, as a shell would run it)."""
    script = Path(sys.executable).with_name("archspec")
    if not script.exists():
        pytest.skip("the archspec script is not installed next to this Python")
    env = {
        **os.environ,
        "_ARCHSPEC_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    return subprocess.run([script], env=env, capture_output=True, text=True, timeout=60).stdout.split()


def test_completion_offers_commands_and_options():
    assert _complete("archspec fl") == ["flops"]
    assert _complete("archspec flops --by") == ["--by-op", "--by-module"]
    assert _complete("archspec build resnet18 --dev") == ["--device"]


# --- archspec list PATTERN and archspec.list_specs(pattern) -------------------------------------------


def test_list_filters_stock_specs_with_a_shell_pattern(cli):
    result = cli("list", "resnet*", "--format", "csv")
    assert result.exit_code == 0, result.output
    names = [line.split(",")[0] for line in result.stdout.splitlines()[1:]]
    assert names == archspec.list_specs("resnet*")
    assert names == [name for name in archspec.list_specs() if name.startswith("resnet")]
    assert "resnext50_32x4d" not in names and "resnet50d" in names


def test_list_specs_takes_a_pattern_in_python():
    assert archspec.list_specs("regnet_y_*gf") == [
        "regnet_y_128gf",
        "regnet_y_16gf",
        "regnet_y_1_6gf",
        "regnet_y_32gf",
        "regnet_y_3_2gf",
        "regnet_y_8gf",
    ]
    assert archspec.list_specs("vgg1[13]") == ["vgg11", "vgg13"]
    assert archspec.list_specs("nothing*") == []
    assert archspec.list_specs() == sorted(archspec.list_specs())


def test_a_pattern_that_matches_nothing_is_one_line(cli):
    result = cli("list", "resnet5")
    assert result.exit_code == 1
    assert result.stderr.strip() == "resnet5: pattern: no stock spec matches; `archspec list` shows them all"
