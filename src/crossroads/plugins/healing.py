"""The `response-healing` plugin: a JSON-mode or JSON-schema reply that is not valid JSON is repaired.

OpenRouter's plugin strips markdown fences, extracts the JSON from text around it, closes brackets and
quotes, drops trailing commas and quotes bare keys (openrouter.ai/docs/guides/features/plugins/response-healing).
The repair is `json_repair`'s; the repaired value must be a JSON object or array and, for `json_schema`,
valid against the request's schema (`jsonschema`), or the reply is left as the model wrote it. A reply that
already parses is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def heals(response_format: Mapping[str, Any] | None) -> bool:
    """Whether replies to a request with this `response_format` are JSON the plugin can heal."""
    return response_format is not None and response_format.get("type") in ("json_object", "json_schema")


def heal(text: str, response_format: Mapping[str, Any]) -> str | None:
    """The reply repaired, or None when it is valid already or cannot be repaired into what was asked."""
    try:
        orjson.loads(text)
        return None
    except orjson.JSONDecodeError:
        pass
    from json_repair import repair_json  # imported on first use: a gateway that heals nothing never loads it

    value = repair_json(text, return_objects=True)
    if not isinstance(value, dict | list):
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") \
        if response_format.get("type") == "json_schema" else None
    if schema and not _valid(value, schema):
        return None
    return orjson.dumps(value).decode()


def _valid(value: Any, schema: Mapping[str, Any]) -> bool:
    from jsonschema import Draft202012Validator  # on first use, as json_repair
    from jsonschema.exceptions import SchemaError

    try:
        return bool(Draft202012Validator(schema).is_valid(value))
    except SchemaError:
        return True  # a schema the validator cannot read: the repair stands on its own


__all__ = ["heal", "heals"]
