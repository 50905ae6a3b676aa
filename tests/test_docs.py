"""Generated documents are current: the JSON Schema and the paper reproduction."""

from __future__ import annotations

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
