"""Every bad spec in tests/bad_specs ends with exit code 1 and exactly the message written beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BAD = ROOT / "tests" / "bad_specs"
CASES = sorted(BAD.glob("*.yaml"))
PREFIX = b"# expect: "


def expected_lines(path: Path) -> list[str]:
    """The `NAME.expected` file if there is one, else the `# expect:` comments that open the file."""
    sidecar = path.with_suffix(".expected")
    if sidecar.exists():
        return sidecar.read_text(encoding="utf-8").splitlines()
    lines = []
    for raw in path.read_bytes().split(b"\n"):
        if not raw.startswith(PREFIX):
            break
        lines.append(raw[len(PREFIX) :].decode("utf-8"))
    return lines


def shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_corpus_has_at_least_forty_cases_each_with_one_expected_message():
    assert len(CASES) >= 40
    for path in CASES:
        assert len(expected_lines(path)) == 1, f"{shown(path)}: write one `# expect:` line or a .expected file"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_validate_prints_the_expected_message_and_exits_1(path, cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = cli("validate", shown(path))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == expected_lines(path)
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_the_installed_command_reports_every_case_in_one_run():
    """The real executable, all files at once: one line per file, in order, exit 1, no traceback."""
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "archspec", "validate", *map(shown, CASES)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [line for path in CASES for line in expected_lines(path)]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_every_bad_spec_message_quoted_in_docs_errors_md_is_current():
    everything = {line for path in CASES for line in expected_lines(path)}
    quoted = [
        line
        for line in (ROOT / "docs" / "errors.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("tests/bad_specs/")
    ]
    assert len(quoted) >= 40
    assert [line for line in quoted if line not in everything] == []
