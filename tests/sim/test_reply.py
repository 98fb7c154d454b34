"""Deterministic content: tokenizer, text, stop sequences, logprobs and JSON Schema instances."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from crossroads.sim import reply


def test_tokenizer() -> None:
    assert reply.count_tokens("Hello, world!") == 4
    assert reply.count_tokens("") == 0
    assert reply.count_tokens("  spaced   out  ") == 2
    assert reply.count_tokens('{"a":1}') == 7


@pytest.mark.parametrize("text", ["Hello, world!", '  {"a": [1, 2]}\n', "", "   ", "x"])
def test_split_pieces_round_trips(text: str) -> None:
    pieces = reply.split_pieces(text)
    assert "".join(pieces) == text
    assert sum(reply.count_tokens(piece) for piece in pieces) == reply.count_tokens(text)
    assert all(reply.count_tokens(piece) == 1 for piece in pieces if piece.strip())


def test_text_pieces_have_exact_token_counts() -> None:
    for count in range(60):
        pieces = reply.text_pieces(12345 + count, count)
        assert len(pieces) == count
        assert reply.count_tokens("".join(pieces)) == count
    text = "".join(reply.text_pieces(99, 30))
    assert text[0].isupper()
    assert text.endswith(".")


def test_text_is_deterministic_and_seed_dependent() -> None:
    assert reply.text_pieces(1, 20) == reply.text_pieces(1, 20)
    assert reply.text_pieces(1, 20) != reply.text_pieces(2, 20)
    assert reply.seed_of({"a": 1, "b": [2]}) == reply.seed_of({"b": [2], "a": 1})
    assert 8 <= reply.default_token_count(reply.seed_of("x")) <= 40


def test_apply_stop() -> None:
    pieces = ["The", " quick", " brown", " fox", "."]
    assert reply.apply_stop(pieces, ["brown"]) == (["The", " quick", " "], True)
    assert reply.apply_stop(pieces, ["fox", "qu"]) == (["The", " "], True)
    assert reply.apply_stop(pieces, ["zebra", ""]) == (pieces, False)
    assert reply.apply_stop(pieces, ["The"]) == ([], True)


def test_token_logprobs() -> None:
    entries = reply.token_logprobs(["Hi", " there"], 7, 3)
    assert [entry["token"] for entry in entries] == ["Hi", " there"]
    for entry in entries:
        assert entry["logprob"] <= 0
        assert entry["bytes"] == list(entry["token"].encode())
        top = entry["top_logprobs"]
        assert len(top) == 3
        assert top[0]["token"] == entry["token"]
        assert [alt["logprob"] for alt in top] == sorted((alt["logprob"] for alt in top), reverse=True)
    assert reply.token_logprobs(["a"], 7, 0)[0]["top_logprobs"] == []


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
    {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "count": {"type": "integer", "minimum": 3, "maximum": 5},
            "step": {"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 30},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "maybe": {"type": ["string", "null"]},
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
            "fixed": {"const": "v1"},
        },
        "required": ["unit", "count"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/Point"}, "minItems": 2, "maxItems": 4},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "shape": {"oneOf": [{"$ref": "#/$defs/Point"}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "uniqueItems": True},
        },
        "required": ["points", "label", "shape", "tags"],
    },
    {
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/definitions/Node",
    },
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"required": ["b"], "properties": {"b": {"type": "boolean"}}},
        ]
    },
    {"type": "object", "properties": {}, "required": ["free"], "minProperties": 3},
    {"type": "number", "exclusiveMinimum": 10, "exclusiveMaximum": 10.5},
    {"type": "integer", "maximum": -50},
    {"type": "string"},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_json_instance_is_valid(schema: dict[str, Any]) -> None:
    for seed in range(25):
        instance = reply.json_instance(schema, seed)
        jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)
        assert reply.json_instance(schema, seed) == instance


def test_tool_arguments() -> None:
    assert reply.tool_arguments(None, 1) == "{}"
    assert reply.tool_arguments({}, 1) == "{}"
    schema = SCHEMAS[0]
    arguments = reply.tool_arguments(schema, 5)
    assert " " not in arguments.split('"')[0]
    jsonschema.validate(orjson.loads(arguments), schema)


def test_alnum_id() -> None:
    ident = reply.alnum_id(42, 24)
    assert len(ident) == 24
    assert ident.isalnum()
    assert ident == reply.alnum_id(42, 24)


def test_huge_minimums_are_capped() -> None:
    schema = {"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**9}}
    instance = reply.json_instance(schema, 1)
    assert len(instance) == 1000  # minItems honoured up to 1,000
    assert {len(item) for item in instance} == {10000}  # minLength up to 10,000


def test_quote_results() -> None:
    pieces = reply.quote_results(["12 degrees", '{"zone": "UTC"}'])
    assert "".join(pieces) == 'Tool result: 12 degrees | {"zone": "UTC"}'
    assert len(pieces) == reply.count_tokens("".join(pieces))
