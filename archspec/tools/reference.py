"""docs/spec.md: every field of the language, and the block and stem tables from the plan's registries.

`python -m archspec.tools.reference > docs/spec.md` regenerates it; a test compares.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from typing import TYPE_CHECKING

from archspec.lang.blocks import BLOCK_NAMES, BLOCK_PARAMS
from archspec.lang.schema import KNOBS

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo


def _type_name(annotation: object) -> str:
    text = str(annotation).replace("typing.", "").replace("Optional[", "").replace("archspec.lang.schema.", "")
    text = re.sub(r"Annotated\[(\w+), .*?\]", r"\1", text)
    text = re.sub(r"Literal\[(.*?)\]", lambda m: " | ".join(v.strip().strip("'") for v in m.group(1).split(",")), text)
    return text.rstrip("]") if text.count("]") > text.count("[") else text


def _plain_type(annotation: object, metadata: list[object]) -> str:
    """A field's type in words: `integer >= 1`, `number in (0, 64]`, `boolean`, `a | b`."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _plain_type(args[0], list(getattr(annotation, "__metadata__", ())))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_plain_type(arg, metadata) for arg in args if arg is not type(None)]
        return " | ".join(parts)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(str(arg) for arg in args)
    names: dict[object, str] = {bool: "boolean", int: "integer", float: "number", str: "text"}
    words = names.get(annotation)
    if words is None:
        return _type_name(annotation)
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">")):
            bound = getattr(item, attr, None)
            if bound is not None and words != "boolean":
                return f"{words} {sign} {bound}"
    return words


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True)
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
    "Scale": "mapping",
    "SqueezeExcite": "mapping, false or null",
    "StageGenerators": "mapping",
}


def spec_reference() -> str:
    """docs/spec.md: every field of the language with its type, default and description."""
    from archspec.lang import schema as s

    lines = [
        "# The spec language",
        "",
        "Generated from the Pydantic models in `archspec/lang/schema.py` by `python -m archspec.tools.reference`;",
        "a test regenerates it and compares. Unknown keys are errors; values are strict (YAML's",
        "`yes`/`on` never becomes a number, `64.0` never an integer); closed choices list their",
        "values. The JSON Schema of the same language is `docs/archspec.schema.json`.",
        "",
    ]
    sections: list[tuple[str, type[s.Model], str]] = [
        ("Top level", s.Spec, ""),
        ("`input`", s.Input, "input."),
        ("`stem`", s.Stem, "stem."),
        ("`stages[i]`", s.Stage, "stages.N."),
        ("`stages: {regnet: ...}`", s.RegNetRule, "stages.regnet."),
        ("`se`", s.SqueezeExcite, "se."),
        ("`scale`", s.Scale, "scale."),
        *((f"`block: {{type: {name}}}`", model, "block.") for name, model in BLOCK_PARAMS.items()),
        ("`head`", s.Head, "head."),
    ]
    for title, model, prefix in sections:
        lines += [
            f"## {title}",
            "",
            inspect.cleandoc(model.__doc__ or ""),
            "",
            "| field | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for name, field in model.model_fields.items():
            kind = _TYPES.get(getattr(field.annotation, "__name__", ""))
            if kind is None:
                inner = [a for a in getattr(field.annotation, "__args__", ()) if a is not type(None)]
                kind = _TYPES.get(getattr(inner[0], "__name__", "")) if inner else None
            if kind is None:
                kind = _SIMPLE.get(f"{prefix}{name}") or _SIMPLE.get(name if prefix == "block." else "")
                kind = kind or _plain_type(field.annotation, field.metadata)
            meaning = (
                field.description if name != "type" or prefix != "block." else "The kind's name: the mapping's tag."
            )
            lines.append(f"| `{prefix}{name}` | {_one_of(kind)} | {_default(field)} | {meaning} |")
        lines.append("")
    lines += _rules_text()
    return "\n".join(lines)


def _families() -> str:
    """`resnet: basic, bottleneck, plain; vgg; regnet`: each layout family with the kinds it places."""
    from archspec.plan.blocks import BLOCKS

    families: dict[str, list[str]] = {}
    for kind in BLOCKS.values():
        families.setdefault(kind.family, []).append(kind.name)
    return "; ".join(
        family if names == [family] else f"{family}: {', '.join(names)}" for family, names in families.items()
    )


def _rules_text() -> list[str]:
    """The cross-field rules, with the knob-to-block table read from the plan's registry."""
    from archspec.plan.blocks import BLOCKS
    from archspec.plan.stems import STEMS

    lines = [
        "## Which knobs shape which blocks",
        "",
        "A knob set on a stage overrides the network's value for that stage only. Set on a stage",
        "whose blocks it does not shape, it is an error naming that stage's field; set on the network,",
        "an error naming the network's field when a stage that inherits it has such blocks.",
        "",
        "| block | family (module layout) | what it is | knobs that shape it | knobs it ignores |",
        "|---|---|---|---|---|",
    ]
    for kind in BLOCKS.values():
        knobs = ", ".join(f"`{k}`" for k in kind.params.knobs())
        ignored = ", ".join(f"`{k}`" for k in KNOB_ORDER if k in kind.tolerates) or "-"
        lines.append(f"| `{kind.name}` | {kind.family} | {kind.summary} | {knobs} | {ignored} |")
    lines += ["", "| stem | what it is | fields besides `type` |", "|---|---|---|"]
    for stem in STEMS.values():
        lines.append(f"| `{stem.name}` | {stem.summary} | {', '.join(f'`{f}`' for f in sorted(stem.fields))} |")
    lines += [
        "| `none` | no stem | none |",
        "",
        "## Rules that span fields",
        "",
        f"- Blocks of different families ({_families()}) cannot be mixed in one network: their module",
        "  layouts differ. `se`, `avg_down`, `drop_path`, `output_stride`, `preact` and",
        "  `zero_init_residual` need residual blocks.",
        "- `groups` and `group_width` are exclusive on the network and on each stage; a stage that sets",
        "  either overrides both network values. `se.ratio` is exclusive with `se.reduction` and",
        "  `se.divisor`. `se: false` turns squeeze-and-excitation off for a stage.",
        "- A generator's `se_ratio` and a `bottleneck_ratio` other than 1 need a generated `block` that",
        "  takes `se` and `bottleneck_ratio` (`se_ratio: null` or `bottleneck_ratio: 1` turns them off).",
        "  The generator gives each stage its group width (and its SE, with `se_ratio`) and fits the widths",
        "  to its own `bottleneck_ratio`: the network's `group_width`, `groups`, `se` and `bottleneck_ratio`",
        "  (flat or in `block:`) are then errors that point to the generator's field.",
        "- A pre-activation first stage makes the stem end at its conv; a pre-activation last stage",
        "  adds a norm and an activation before the head's pool.",
        "- Option A cannot reduce width; every feature map must keep at least 1x1 for the given",
        "  input; a bottleneck's inner width must not round to zero; a group width must divide the",
        "  inner width; group norm needs channel counts divisible by `norm_groups`; `head.features`",
        "  must name existing stages.",
        "- These are checked before any tensor is made (`archspec validate` reports them with",
        "  the line of the field at fault).",
        "",
    ]
    return lines


# The shared knobs, in the order the spec lists them.
KNOB_ORDER = KNOBS
_BLOCK_CHOICES = " | ".join(BLOCK_NAMES)

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
    "stages.N.block": f"{_BLOCK_CHOICES}, or a mapping",
    "block": f"{_BLOCK_CHOICES}, or a mapping",
    "stages.N.shortcut": "A | B | C",
    "stages.N.groups": "integer >= 1",
    "stages.N.group_width": "integer >= 1",
    "stages.N.width_per_group": "integer >= 1",
    "stages.N.bottleneck_ratio": "number in (0, 64]",
    "stages.N.expansion": "integer >= 1",
    "stages.N.stride_in": "1x1 | 3x3",
    "stages.N.avg_down": "boolean",
    "stages.N.se": "mapping, or false",
    "stages.N.preact": "boolean",
    "stages.N.activation": "relu | relu6 | silu | gelu",
    "stages.regnet.depth": "integer from 1 to 10000",
    "stages.regnet.w0": "integer >= 8, a multiple of 8",
    "stages.regnet.wa": "number >= 0",
    "stages.regnet.wm": "number > 1",
    "stages.regnet.group_width": "integer >= 1",
    "stages.regnet.bottleneck_ratio": "number in (0, 64]",
    "stages.regnet.se_ratio": "number in (0, 1]",
    "stages.regnet.block": _BLOCK_CHOICES,
    "se.ratio": "number in (0, 1]",
    "se.of": "output | input",
    "group_width": "integer >= 1",
    "bottleneck_ratio": "number in (0, 64]",
    "se": "mapping, false or null",
    "se.reduction": "integer >= 1",
    "se.divisor": "integer >= 1",
    "head.num_classes": "integer >= 1",
    "head.conv": "integer >= 1",
    "scale.width": "number in (0, 64]",
    "scale.depth": "number in (0, 64]",
    "scale.divisor": "integer >= 1",
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
    "stages": "list of stages (at least one), or a generator mapping",
    "preact": "boolean",
    "avg_down": "boolean",
    "zero_init_residual": "boolean",
}


if __name__ == "__main__":
    print(spec_reference(), end="")
