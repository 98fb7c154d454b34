"""OpenRouter's model documents: the recorded fixtures are what the specification describes, and decoding
them keeps what the catalog needs or says clearly why it cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossroads.catalog import openrouter
from crossroads.errors import ConfigError
from tests.openapi import validate_response

FIXTURES = Path(__file__).parent.parent / "data" / "openrouter"


def test_the_model_list_fixture_matches_the_specification() -> None:
    validate_response(json.loads((FIXTURES / "models.json").read_bytes()), "/models", "get", 200)


@pytest.mark.parametrize("path", sorted((FIXTURES / "endpoints").glob("*.json")), ids=lambda p: p.stem)
def test_each_endpoint_list_fixture_matches_the_specification(path: Path) -> None:
    validate_response(json.loads(path.read_bytes()), "/models/{author}/{slug}/endpoints", "get", 200)


def test_decoding_keeps_prices_as_published_strings() -> None:
    models = openrouter.decode_models((FIXTURES / "models.json").read_bytes(), "models.json")
    by_id = {m.id: m for m in models.data}
    assert len(by_id) >= 30
    assert by_id["openai/gpt-4o"].pricing.prompt == "0.0000025"
    assert by_id["openai/gpt-5"].reasoning is not None
    assert by_id["openai/gpt-5"].reasoning.supported_efforts == ["high", "medium", "low", "minimal"]
    assert by_id["google/gemini-2.5-pro"].architecture.input_modalities[-1] == "video"


def test_endpoint_lists_from_a_directory_a_file_or_an_array(tmp_path: Path) -> None:
    lists = openrouter.read_endpoints(FIXTURES / "endpoints")
    assert len(lists) == len(list((FIXTURES / "endpoints").glob("*.json")))
    one = openrouter.read_endpoints(FIXTURES / "endpoints" / "openai--gpt-4o.json")
    assert [e.provider_name for e in one[0].data.endpoints] == ["OpenAI", "Azure"]
    array = tmp_path / "all.json"
    array.write_text(json.dumps([json.loads(p.read_text()) for p in sorted((FIXTURES / "endpoints").glob("*.json"))]))
    assert [x.data.id for x in openrouter.read_endpoints(array)] == [x.data.id for x in lists]


def test_a_document_of_another_shape_is_refused_naming_the_source_and_field() -> None:
    with pytest.raises(ConfigError, match=r"here\.json: not an OpenRouter document: .*\$\.data\[0\]"):
        openrouter.decode_models(b'{"data": [{"id": "a/b"}]}', "here.json")
    with pytest.raises(ConfigError, match=r"here\.json: not valid JSON"):
        openrouter.decode_models(b"<html>", "here.json")
