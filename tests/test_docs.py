"""Documents are current: the generated JSON Schema and paper reproduction, and every spec the docs show."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from archspec.lang.reference import schema_json
from archspec.tools.paper import paper_markdown


def test_committed_schema_is_current():
    assert (ROOT / "docs" / "archspec.schema.json").read_text() == schema_json()


def test_docs_paper_md_is_regenerated_exactly(cli):
    assert (ROOT / "docs" / "paper.md").read_text() == paper_markdown()
    assert cli("paper").stdout == paper_markdown()


def test_docs_spec_md_is_generated_from_the_schema():
    from archspec.tools.reference import spec_reference

    assert (ROOT / "docs" / "spec.md").read_text() == spec_reference()


def _yaml_examples():
    """Every spec written in a ```yaml block of the README and docs/ (documents split on ---), with its
    place; fragments (no `stages` and no `extends`, or a `...` standing for the rest) are left out."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 1
            for part in match.group(1).split("\n---\n"):
                has_body = re.search(r"^(stages|extends):", part, re.M)
                if has_body and not re.search(r"^\s*- \.\.\.\s*$", part, re.M):
                    yield pytest.param(part, id=f"{page.name}:{line}")


@pytest.mark.parametrize("text", list(_yaml_examples()))
def test_every_spec_the_docs_show_is_valid(text, cli, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    result = cli("validate", path)
    assert result.exit_code == 0, result.output


def test_the_example_finder_finds_the_specs_the_docs_show():
    # README (4), variants.md (5), design-spaces.md (2) at the time of writing: a broken finder finds none.
    assert len(list(_yaml_examples())) >= 10
