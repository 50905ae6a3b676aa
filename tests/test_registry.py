"""The planner's registries and the three dispatchers over plan ops agree with each other and with the schema."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest

from archspec.counting import analytic, memory
from archspec.lang import schema
from archspec.nn import builder
from archspec.plan.blocks import BLOCKS
from archspec.plan.generators import GENERATORS
from archspec.plan.layouts import LAYOUTS
from archspec.plan.ops import OP_TYPES
from archspec.plan.stems import NO_STEM, STEMS

DISPATCHERS = {
    "counter": (analytic.HANDLERS, lambda op: analytic.count_op(op)),
    "memory estimate": (memory.HANDLERS, lambda op: memory.feature_maps(op)),
    "builder": (builder.HANDLERS, lambda op: builder.make_module(op)),
}


@pytest.mark.parametrize("name", DISPATCHERS)
def test_every_op_type_has_a_handler(name):
    table, _ = DISPATCHERS[name]
    assert set(table) == set(OP_TYPES)


@dataclass(frozen=True)
class UnknownOp:
    pass


@pytest.mark.parametrize("name", DISPATCHERS)
def test_an_op_without_a_handler_is_an_error_not_a_silent_zero(name):
    _, dispatch = DISPATCHERS[name]
    with pytest.raises(TypeError, match="UnknownOp"):
        dispatch(UnknownOp())


def test_the_schema_names_every_registered_block_stem_and_generator():
    assert set(typing.get_args(schema.BlockType)) == set(BLOCKS)
    assert set(typing.get_args(schema.StemType)) == set(STEMS) | {NO_STEM}
    assert set(schema.GENERATORS) == set(GENERATORS) == set(schema.StageGenerators.model_fields)


def test_every_block_kind_has_a_layout_and_known_knobs():
    for kind in BLOCKS.values():
        assert kind.family in LAYOUTS
        assert kind.knobs | kind.tolerates <= set(schema.KNOBS), kind.name
        assert not kind.knobs & kind.tolerates, kind.name


def test_every_knob_is_a_field_of_the_network_and_of_a_stage():
    assert set(schema.KNOBS) <= set(schema.Spec.model_fields) & set(schema.Stage.model_fields)
