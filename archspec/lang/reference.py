"""The JSON Schema of the spec language (for editors; committed as docs/archspec.schema.json)."""

from __future__ import annotations

import json

from archspec.lang.schema import Spec


def schema_json() -> str:
    """The JSON Schema of a spec, as committed in docs/archspec.schema.json."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archspec spec"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
