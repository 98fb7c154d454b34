"""JSON Schema → the Gemini API's `Schema` object, for `responseSchema` and function `parameters`.

Gemini's `Schema` is "a select subset of an OpenAPI 3.0 schema object" (Gemini API reference, *Caching* →
`Schema`; https://ai.google.dev/api/caching#Schema): `type` (an enum: STRING, NUMBER, INTEGER, BOOLEAN,
ARRAY, OBJECT), `format`, `title`, `description`, `nullable`, `enum` (strings only), `properties`,
`required`, `propertyOrdering`, `items`, `minItems`/`maxItems`, `minProperties`/`maxProperties`,
`minLength`/`maxLength`, `pattern`, `minimum`/`maximum`, `anyOf`, `example` and `default`. The API rejects
any other field ("Unknown name ... Cannot find field"), so a client's JSON Schema is rewritten rather than
forwarded, keeping as much meaning as the subset can carry:

  * `$ref` is inlined from `$defs` / `definitions` (a recursive reference is cut after one expansion into
    an untyped-object placeholder, since the subset has no references);
  * `allOf` is merged into one schema; `oneOf` becomes `anyOf`;
  * a `null` branch of `anyOf` / `oneOf`, a `"null"` entry of a `type` list and a `null` enum member become
    `nullable: true`; several non-null types become an `anyOf` of one schema per type;
  * `const` becomes a one-member `enum`; enums of numbers or booleans cannot be expressed (Gemini enums
    are strings) and are kept as a sentence in `description` instead;
  * `exclusiveMinimum` / `exclusiveMaximum` (draft 6 numbers) become `minimum` / `maximum`;
  * `format` is kept only where Gemini documents it for the type (`date-time` and `enum` for strings,
    `int32`/`int64`, `float`/`double`);
  * everything else (`additionalProperties`, `patternProperties`, `not`, `if`, `uniqueItems`,
    `multipleOf`, `$schema`, `examples`, ...) is dropped: Gemini ignores what it cannot enforce anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["to_gemini_schema"]

_TYPES: Final = {"string": "STRING", "number": "NUMBER", "integer": "INTEGER", "boolean": "BOOLEAN",
                 "array": "ARRAY", "object": "OBJECT"}
_FORMATS: Final = {"STRING": frozenset({"date-time", "enum"}), "INTEGER": frozenset({"int32", "int64"}),
                   "NUMBER": frozenset({"float", "double"})}
#: Keywords copied as they are (after their values are checked to have the right JSON type).
_COUNTS: Final = ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength")
_MAX_DEPTH: Final = 32


def to_gemini_schema(schema: Any) -> dict[str, Any]:
    """Rewrite a JSON Schema into Gemini's OpenAPI subset. Never fails: what cannot be said is dropped."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Converter(root).convert(root, (), 0)


class _Converter:
    __slots__ = ("_root",)

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root

    def convert(self, schema: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return {"type": "STRING"} if schema is not False else {"type": "STRING", "nullable": True}
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in refs:  # recursion: the subset has no references, so stop with a bare type
                kinds = [_TYPES[k] for k in _types(self._resolve(ref).get("type")) if k in _TYPES]
                out: dict[str, Any] = {"type": kinds[0] if kinds else "OBJECT"}
                if out["type"] == "ARRAY":
                    out["items"] = {"type": "STRING"}
                if isinstance(schema.get("description"), str):
                    out["description"] = schema["description"]
                return out
            target = self._resolve(ref)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.convert({**target, **rest}, (*refs, ref), depth + 1)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                resolved = self._resolve(part["$ref"]) if isinstance(part, Mapping) \
                    and isinstance(part.get("$ref"), str) else part
                if isinstance(resolved, Mapping):
                    merged = _merge(merged, resolved)
            return self.convert(merged, refs, depth + 1)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self._union(schema, key, branches, refs, depth)
        return self._plain(schema, refs, depth)

    def _union(self, schema: Mapping[str, Any], key: str, branches: list[Any], refs: tuple[str, ...],
               depth: int) -> dict[str, Any]:
        rest = {k: v for k, v in schema.items() if k != key}
        concrete = [b for b in branches if not _is_null(b)]
        nullable = len(concrete) < len(branches)
        if len(concrete) == 1:
            out = self.convert(_merge(rest, concrete[0]) if isinstance(concrete[0], Mapping) else rest,
                               refs, depth + 1)
        else:
            out = self._annotations(rest)
            out["anyOf"] = [self.convert(b, refs, depth + 1) for b in concrete]
        if nullable:
            out["nullable"] = True
        return out

    def _plain(self, schema: Mapping[str, Any], refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        out = self._annotations(schema)
        nullable = schema.get("nullable") is True
        values: list[Any] | None = None
        if "const" in schema:
            values = [schema["const"]]
        elif isinstance(schema.get("enum"), list):
            values = list(schema["enum"])
        if values is not None and None in values:
            nullable = True
            values = [v for v in values if v is not None]

        kinds = _types(schema.get("type"))
        if "null" in kinds:
            nullable = True
            kinds = [k for k in kinds if k != "null"]
        if len(kinds) > 1:  # a type list: one branch per type
            rest = {k: v for k, v in schema.items() if k != "type"}
            out["anyOf"] = [self._plain({**rest, "type": kind}, refs, depth + 1) for kind in kinds]
            if nullable:
                out["nullable"] = True
            return out
        kind = _TYPES.get(kinds[0]) if kinds else _infer(schema, values)
        out["type"] = kind or "STRING"
        if nullable:
            out["nullable"] = True

        if values is not None:
            if values and all(isinstance(v, str) for v in values):
                out["type"] = "STRING"
                out["enum"] = values
            elif values:
                listed = ", ".join(_literal(v) for v in values)
                out["description"] = (out.get("description", "") + f" Allowed values: {listed}.").strip()

        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out["type"], ()):
            out["format"] = fmt
        if out["type"] == "OBJECT":
            self._object(schema, out, refs, depth)
        elif out["type"] == "ARRAY":
            self._array(schema, out, refs, depth)
        elif out["type"] in ("NUMBER", "INTEGER"):
            _bounds(schema, out)
        elif out["type"] == "STRING" and isinstance(schema.get("pattern"), str):
            out["pattern"] = schema["pattern"]
        for key in _COUNTS:
            value = schema.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value
        return out

    def _object(self, schema: Mapping[str, Any], out: dict[str, Any], refs: tuple[str, ...], depth: int) -> None:
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and properties:
            out["properties"] = {str(name): self.convert(sub, refs, depth + 1) for name, sub in properties.items()}
            required = schema.get("required")
            if isinstance(required, list):
                names = [name for name in required if isinstance(name, str) and name in properties]
                if names:
                    out["required"] = names
            ordering = schema.get("propertyOrdering")
            if isinstance(ordering, list) and all(isinstance(name, str) for name in ordering):
                out["propertyOrdering"] = ordering

    def _array(self, schema: Mapping[str, Any], out: dict[str, Any], refs: tuple[str, ...], depth: int) -> None:
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft 4 tuple form
            prefix, items = items, None
        if isinstance(prefix, list) and prefix:
            branches = [self.convert(sub, refs, depth + 1) for sub in prefix]
            if isinstance(items, Mapping):
                branches.append(self.convert(items, refs, depth + 1))
            out["items"] = branches[0] if len(branches) == 1 else {"anyOf": branches}
        elif isinstance(items, Mapping):
            out["items"] = self.convert(items, refs, depth + 1)
        else:
            out["items"] = {"type": "STRING"}  # an ARRAY needs an item type

    @staticmethod
    def _annotations(schema: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("title", "description"):
            if isinstance(schema.get(key), str):
                out[key] = schema[key]
        if "default" in schema:
            out["default"] = schema["default"]
        examples = schema.get("examples")
        if "example" in schema:
            out["example"] = schema["example"]
        elif isinstance(examples, list) and examples:
            out["example"] = examples[0]
        return out

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        """A `#/...` JSON pointer into the root schema; anything else resolves to an empty schema."""
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for raw in ref[1:].split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return {}
        return node if isinstance(node, Mapping) else {}


def _types(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _infer(schema: Mapping[str, Any], values: list[Any] | None) -> str | None:
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "OBJECT"
    if "items" in schema or "prefixItems" in schema:
        return "ARRAY"
    if values:
        first = values[0]
        if isinstance(first, bool):
            return "BOOLEAN"
        if isinstance(first, int):
            return "INTEGER"
        if isinstance(first, float):
            return "NUMBER"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "NUMBER"
    return None


def _bounds(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        # Draft 6+ gives an exclusive bound as a number (draft 4 as a flag); the tighter bound wins.
        bounds = [schema[k] for k in (key, exclusive) if _is_number(schema.get(k))]
        if bounds:
            out[key] = max(bounds) if key == "minimum" else min(bounds)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("type") == "null" or schema.get("const", ...) is None)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two schemas as `allOf` would: properties and required lists combined, base winning otherwise."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**value, **merged[key]}
        elif key == "required" and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *(name for name in value if name not in merged[key])]
        else:
            merged.setdefault(key, value)
    return merged
