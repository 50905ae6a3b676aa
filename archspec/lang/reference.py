"""Generated documentation artefacts: the JSON Schema of the spec language."""

from __future__ import annotations

import json
import re

from archspec.lang.schema import Spec


def schema_json() -> str:
    """The JSON Schema of a spec, as committed in docs/archspec.schema.json."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archspec spec"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _type_name(annotation) -> str:
    text = str(annotation).replace("typing.", "").replace("Optional[", "").replace("archspec.lang.schema.", "")
    text = re.sub(r"Annotated\[(\w+), .*?\]", r"\1", text)
    text = re.sub(r"Literal\[(.*?)\]", lambda m: " | ".join(v.strip().strip("'") for v in m.group(1).split(",")), text)
    return text.rstrip("]") if text.count("]") > text.count("[") else text


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        return "[]" if value == [] else "see below"
    return "null" if field.default is None else json.dumps(field.default)


def _one_of(kind: str) -> str:
    """`a | b | c` -> `a, b or c` (a bar would split a Markdown table cell)."""
    parts = [p.strip() for p in kind.split("|")]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


_TYPES = {
    "Input": "mapping",
    "Stem": "mapping",
    "Head": "mapping",
    "SqueezeExcite": "mapping or null",
}


def spec_reference() -> str:
    """docs/spec.md: every field of the language with its type, default and description."""
    from archspec.lang import schema as s

    lines = [
        "# The spec language",
        "",
        "Generated from the Pydantic models in `archspec/lang/schema.py` by `python -m archspec.lang.reference`;",
        "a test regenerates it and compares. Unknown keys are errors; values are strict (YAML's",
        "`yes`/`on` never becomes a number, `64.0` never an integer); closed choices list their",
        "values. The JSON Schema of the same language is `docs/archspec.schema.json`.",
        "",
    ]
    sections = [("Top level", s.Spec, ""), ("`input`", s.Input, "input."), ("`stem`", s.Stem, "stem."), ("`stages[i]`", s.Stage, "stages.N."), ("`se`", s.SqueezeExcite, "se."), ("`head`", s.Head, "head.")]
    for title, model, prefix in sections:
        lines += [f"## {title}", "", (model.__doc__ or "").strip(), "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            kind = _TYPES.get(getattr(field.annotation, "__name__", ""), None)
            if kind is None:
                inner = [a for a in getattr(field.annotation, "__args__", ()) if a is not type(None)]
                kind = _TYPES.get(getattr(inner[0], "__name__", ""), None) if inner else None
            if kind is None:
                kind = _SIMPLE.get(f"{prefix}{name}") or _type_name(field.annotation)
            lines.append(f"| `{prefix}{name}` | {_one_of(kind)} | {_default(field)} | {field.description} |")
        lines.append("")
    lines += [
        "## Rules that span fields",
        "",
        "- vgg stages cannot be mixed with other block types; `preact` applies to basic and",
        "  bottleneck blocks; `groups` and `width_per_group` shape bottlenecks only;",
        "  `stem.inner_width` belongs to the deep stem; `output_stride` to residual networks.",
        "- Option A cannot reduce width; every feature map must keep at least 1x1 for the given",
        "  input; a bottleneck's inner width must not round to zero; group norm needs channel",
        "  counts divisible by `norm_groups`; `head.features` must name existing stages.",
        "- These are checked before any tensor is made (`archspec validate` reports them with",
        "  the line of the field at fault).",
        "",
    ]
    return "\n".join(lines)


_SIMPLE = {
    "name": "text",
    "description": "text",
    "extends": "text (stock name or path)",
    "input.channels": "integer >= 1",
    "input.size": "integer >= 1, or [height, width]",
    "stem.width": "integer >= 1",
    "stem.inner_width": "integer >= 1",
    "stem.pool": "boolean",
    "stages.N.depth": "integer from 1 to 10000",
    "stages.N.width": "integer >= 1",
    "stages.N.stride": "1 | 2",
    "stages.N.block": "basic | bottleneck | plain | vgg",
    "stages.N.shortcut": "A | B | C",
    "se.reduction": "integer >= 1",
    "se.divisor": "integer >= 1",
    "head.num_classes": "integer >= 1",
    "head.hidden": "list of integers >= 1",
    "head.dropout": "number in [0, 1)",
    "head.pool_size": "integer >= 1, or [height, width]",
    "head.features": "list of integers >= 0",
    "groups": "integer >= 1",
    "width_per_group": "integer >= 1",
    "expansion": "integer >= 1",
    "drop_path": "number in [0, 1)",
    "output_stride": "8 | 16 | 32",
    "norm_groups": "integer >= 1",
    "stages": "list of stages (at least one)",
    "preact": "boolean",
    "avg_down": "boolean",
    "zero_init_residual": "boolean",
}


if __name__ == "__main__":
    print(spec_reference(), end="")
