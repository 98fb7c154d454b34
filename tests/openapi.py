"""Validate responses against OpenRouter's OpenAPI specification (`tests/data/openrouter-openapi.yaml`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml

SPEC_PATH = Path(__file__).parent / "data" / "openrouter-openapi.yaml"


@functools.cache
def spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open() as fh:
        document: dict[str, Any] = yaml.load(fh, Loader=loader)
    _relax_provider_names(document)
    return document


def _relax_provider_names(node: Any) -> None:
    """The one deliberate difference: provider names. The spec closes them to OpenRouter's own providers
    (its official SDKs accept any string); a self-hosted gateway also serves its simulator, local servers
    and providers an operator adds, so any name is allowed wherever the spec lists provider names."""
    if isinstance(node, dict):
        values = node.get("enum")
        if isinstance(values, list) and "OpenAI" in values and "Anthropic" in values:
            del node["enum"]
        for child in node.values():
            _relax_provider_names(child)
    elif isinstance(node, list):
        for child in node:
            _relax_provider_names(child)


@functools.cache
def _registry() -> referencing.Registry[Any]:
    resource = referencing.Resource.from_contents(spec(), default_specification=referencing.jsonschema.DRAFT202012)
    return referencing.Registry().with_resource("urn:openrouter", resource)


def schema_for(path: str, method: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    responses = spec()["paths"][path][method]["responses"]
    response = responses.get(str(status)) or responses["default"]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = spec()["components"]["responses"][name]
    schema: dict[str, Any] = response["content"][content_type]["schema"]
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` matches `schema` (refs resolve into the spec)."""
    wrapped = {"$ref": f"urn:openrouter{schema['$ref']}"} if "$ref" in schema else _rebase(schema)
    validator = jsonschema.Draft202012Validator(wrapped, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        raise errors[0]


def validate_component(instance: Any, name: str) -> None:
    validate(instance, {"$ref": f"#/components/schemas/{name}"})


def validate_response(instance: Any, path: str, method: str, status: int,
                      content_type: str = "application/json") -> None:
    validate(instance, schema_for(path, method, status, content_type))


def _rebase(node: Any) -> Any:
    """Point local `#/...` refs inside an inline schema at the spec resource."""
    if isinstance(node, dict):
        return {k: (f"urn:openrouter{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node
