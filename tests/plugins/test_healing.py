from __future__ import annotations

import json

import pytest

from crossroads.plugins.healing import heal, heals

SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"]}}}


@pytest.mark.parametrize("text", [
    '```json\n{"name": "Lyon", "population": 520000}\n```',
    'Here you are: {"name": "Lyon", "population": 520000} Anything else?',
    '{"name": "Lyon", "population": 520000,}',
    '{name: "Lyon", population: 520000}',
    '{"name": "Lyon", "population": 520000',
])
def test_broken_json_is_repaired_into_what_the_schema_asks(text: str) -> None:
    healed = heal(text, SCHEMA)
    assert healed is not None
    assert json.loads(healed) == {"name": "Lyon", "population": 520000}


def test_valid_json_is_left_as_written() -> None:
    assert heal('{"name": "Lyon",   "population": 1}', SCHEMA) is None


def test_a_repair_that_misses_the_schema_is_not_used() -> None:
    assert heal('```json\n{"name": "Lyon"}\n```', SCHEMA) is None
    assert heal("no JSON here at all", {"type": "json_object"}) is None


def test_json_object_needs_no_schema() -> None:
    assert heal('```\n{"a": [1, 2}\n```', {"type": "json_object"}) == '{"a":[1,2]}'


def test_only_json_formats_are_healed() -> None:
    assert heals({"type": "json_object"}) and heals(SCHEMA)
    assert not heals({"type": "text"}) and not heals(None)
