"""The planner's registries and the dispatchers over plan ops agree with each other and with the schema."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest

from archspec.counting import analytic, memory
from archspec.lang import blocks, schema
from archspec.nn import builder
from archspec.plan import tensors
from archspec.plan.blocks import BLOCKS
from archspec.plan.generators import GENERATORS
from archspec.plan.layouts import LAYOUTS
from archspec.plan.ops import OP_TYPES
from archspec.plan.stems import NO_STEM, STEMS
from archspec.tools import reference

DISPATCHERS = {
    "counter": (analytic.HANDLERS, lambda op: analytic.count_op(op)),
    "memory estimate": (memory.HANDLERS, lambda op: memory.feature_maps(op)),
    "state_dict layout": (tensors.HANDLERS, lambda op: list(tensors.tensor_entries(op))),
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
    assert set(typing.get_args(schema.BlockType)) == set(BLOCKS) == set(blocks.BLOCK_PARAMS)
    assert set(typing.get_args(schema.StemType)) == set(STEMS) | {NO_STEM}
    assert set(schema.GENERATORS) == set(GENERATORS) == set(schema.StageGenerators.model_fields)


def test_every_block_kind_pairs_its_own_parameters_model_with_a_layout():
    for name, kind in BLOCKS.items():
        assert kind.params is blocks.BLOCK_PARAMS[name], name
        assert kind.name == name
        assert kind.family in LAYOUTS, name
        assert set(kind.joins) <= set(LAYOUTS), name
        assert kind.tolerates <= set(schema.KNOBS), name
        assert not kind.knobs & kind.tolerates, name


def test_every_shared_knob_is_a_field_of_the_network_of_a_stage_and_of_some_kind():
    assert set(schema.KNOBS) <= set(schema.Spec.model_fields) & set(schema.Stage.model_fields)
    for knob in schema.KNOBS:
        assert any(knob in kind.knobs for kind in BLOCKS.values()), knob


def test_a_shared_knob_means_the_same_on_the_network_and_in_every_kind_that_takes_it():
    """A network that never writes a shared knob leaves each kind its own default (what a `block:` mapping that
    leaves it out gives); one that writes it sets it for every kind that takes it."""
    for kind in BLOCKS.values():
        stages = [{"depth": 1, "width": 8}]
        unwritten = blocks.resolve_params(schema.Spec.model_validate({"block": kind.name, "stages": stages}), None)
        assert unwritten == kind.params(), kind.name
        for knob in kind.knobs & set(schema.KNOBS):
            if knob != "se":
                written = schema.Spec.model_validate(
                    {"block": kind.name, "stages": stages, knob: schema.Spec.model_fields[knob].default}
                )
                assert getattr(blocks.resolve_params(written, None), knob) == getattr(written, knob), (kind.name, knob)


def test_only_convnext_blocks_default_a_shared_knob_otherwise_than_the_network():
    differing = {
        (kind.name, knob)
        for kind in BLOCKS.values()
        for knob, field in kind.params.model_fields.items()
        if knob in schema.KNOBS and field.default != schema.Spec.model_fields[knob].default
    }
    assert differing == {("convnext", "activation")}


def test_the_schema_and_the_reference_list_every_kind_and_its_parameters():
    json_schema = schema.Spec.model_json_schema()
    definitions = json_schema["$defs"]
    text = reference.spec_reference()
    for name, kind in BLOCKS.items():
        model = definitions[kind.params.__name__]
        assert model["properties"]["type"]["const"] == name
        assert set(model["properties"]) == {"type", *kind.knobs}
        assert f"## `block: {{type: {name}}}`" in text
        for knob in kind.knobs:
            assert f"| `block.{knob}` |" in text, (name, knob)
        assert f"| `{name}` | {kind.family} |" in text
