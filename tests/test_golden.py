"""Every stock spec still plans, lays out its state_dict and counts exactly as its golden record says.

The records (`tests/golden/NAME.json`, written by `python tests/golden_record.py NAME`) lock the
networks the stock specs describe, so that a change to the language, the planner or the counter
that alters one of them fails here, naming the spec, the input size and the first part that differs.
"""

from __future__ import annotations

import json

import pytest
from conftest import STOCK
from golden_record import GOLDEN, as_json, record

RECORDED = sorted(path.stem for path in GOLDEN.glob("*.json"))


def test_every_stock_spec_has_a_golden_record():
    assert set(STOCK) <= set(RECORDED), sorted(set(STOCK) - set(RECORDED))


def _first_difference(stored: object, fresh: object, where: str) -> str | None:
    if isinstance(stored, dict) and isinstance(fresh, dict):
        if list(stored) != list(fresh):
            return f"{where}: keys {list(stored)} != {list(fresh)}"
        for key in stored:
            found = _first_difference(stored[key], fresh[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        for index, (a, b) in enumerate(zip(stored, fresh, strict=False)):
            found = _first_difference(a, b, f"{where}[{index}]")
            if found:
                return found
        if len(stored) != len(fresh):
            return f"{where}: {len(stored)} entries recorded, {len(fresh)} now"
        return None
    return None if stored == fresh and type(stored) is type(fresh) else f"{where}: {stored!r} recorded, {fresh!r} now"


@pytest.mark.parametrize("name", RECORDED)
def test_the_stock_spec_matches_its_golden_record(name):
    stored = json.loads((GOLDEN / f"{name}.json").read_text())
    fresh = as_json(record(name))
    assert len(stored) == len(fresh) == 2
    for at_size, (then, now) in enumerate(zip(stored, fresh, strict=True)):
        difference = _first_difference(then, now, f"{name} at {then['input_size']}")
        assert difference is None, difference
        assert then == now, at_size
