"""`catalog/importer.py`: recorded OpenRouter documents → a catalog file → a loaded catalog with the models,
endpoints and exact prices the documents list, and a report of everything left out."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossroads.catalog import importer, openrouter
from crossroads.catalog.loader import build, load
from crossroads.catalog.types import Catalog

FIXTURES = Path(__file__).parent.parent / "data" / "openrouter"

#: The catalog the import maps to: a fixed set of providers (so which ones are unknown does not depend on the
#: built-in catalog's growth), and one model whose upstream id the catalog already knows.
KNOWN: dict[str, Any] = {
    "providers": {slug: {"name": name, "base_url": f"https://{slug}.example/v1", "api_key_env": "X"}
                  for slug, name in [("openai", "OpenAI"), ("anthropic", "Anthropic"), ("deepinfra", "DeepInfra"),
                                     ("groq", "Groq"), ("together", "Together"), ("novita", "NovitaAI"),
                                     ("google-ai-studio", "Google AI Studio"), ("deepseek", "DeepSeek"),
                                     ("perplexity", "Perplexity")]},
    "models": {"meta-llama/llama-3.3-70b-instruct": {"context_length": 131072, "endpoints": [
        {"provider": "deepinfra", "tag": "deepinfra/turbo", "upstream_model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
         "pricing": {"prompt": "1", "completion": "1"}}]}},
}


@pytest.fixture(scope="module")
def known() -> Catalog:
    return build(KNOWN, {})


def models() -> openrouter.ModelList:
    return openrouter.decode_models((FIXTURES / "models.json").read_bytes(), "models.json")


def listed(model_id: str) -> dict[str, Any]:
    raw = json.loads((FIXTURES / "models.json").read_bytes())
    return next(m for m in raw["data"] if m["id"] == model_id)  # type: ignore[no-any-return]


def imported(known: Catalog, with_endpoints: bool) -> tuple[dict[str, Any], importer.ImportReport]:
    lists = openrouter.read_endpoints(FIXTURES / "endpoints") if with_endpoints else []
    return importer.import_models(models(), lists, known)


@pytest.mark.parametrize(("per_token", "per_million"), [
    ("0.0000025", "2.5"), ("0.00001", "10"), ("0.000000075", "0.075"), ("0.0000003833", "0.3833"),
    ("0", "0"), ("0.000000039", "0.039"), ("0.00000000001", "0.00001"),
])
def test_prices_convert_to_usd_per_million_exactly(per_token: str, per_million: str) -> None:
    assert str(importer.per_million(per_token)) == per_million


@given(st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False))
def test_conversion_is_exact_for_any_published_price(price: Decimal) -> None:
    per_token = format(price / 1_000_000, "f")
    assert importer.per_million(per_token) == price


def test_models_only_map_to_the_authors_own_api(known: Catalog) -> None:
    document, report = imported(known, with_endpoints=False)
    tables = document["models"]
    gpt4o = tables["openai/gpt-4o"]
    assert gpt4o["endpoints"] == [{"provider": "openai", "upstream_model": "gpt-4o", "max_completion_tokens": 16384,
                                   "pricing": {"prompt": "2.5", "completion": "10", "input_cache_read": "1.25"}}]
    sonnet = tables["anthropic/claude-sonnet-4.5"]["endpoints"][0]
    assert sonnet["pricing"] == {"prompt": "3", "completion": "15", "input_cache_read": "0.3",
                                 "input_cache_write": "3.75"}
    # Per-request fees are per unit, not per token.
    assert tables["perplexity/sonar"]["endpoints"][0]["pricing"]["request"] == "0.005"
    # Open models with no endpoint list: the built-in hosts are not guessed; a model nobody known serves is
    # left out and reported.
    assert "meta-llama/llama-3.1-8b-instruct" not in tables
    assert report.skipped["meta-llama/llama-3.1-8b-instruct"] == "no provider the catalog knows serves it"
    assert report.skipped["openrouter/auto"] == "a router with variable prices"
    assert report.skipped["deepseek/deepseek-r1:free"].startswith("a variant")
    # Kept with the catalog's endpoints: a model the catalog has, though the import lists no endpoint for it.
    assert "meta-llama/llama-3.3-70b-instruct" in report.without_endpoints
    assert "endpoints" not in tables["meta-llama/llama-3.3-70b-instruct"]


def test_model_fields_come_from_the_list(known: Catalog) -> None:
    tables = imported(known, with_endpoints=False)[0]["models"]
    gpt5 = tables["openai/gpt-5"]
    assert gpt5["context_length"] == 400000 and gpt5["input_modalities"] == ["text", "image", "file"]
    assert gpt5["reasoning"] == {"supported_efforts": ["high", "medium", "low", "minimal"], "default_effort": "medium",
                                 "default_enabled": True, "mandatory": True}
    assert gpt5["features"]["tools"] and gpt5["features"]["structured_outputs"] and not gpt5["features"]["logprobs"]
    assert tables["google/gemini-2.5-pro"]["input_modalities"] == ["text", "image", "file", "audio", "video"]
    assert tables["google/gemini-2.5-flash-image"]["output_modalities"] == ["image", "text"]
    assert tables["openai/text-embedding-3-small"]["output_modalities"] == ["embeddings"]
    assert tables["openai/gpt-4o-audio-preview"]["input_modalities"] == ["audio", "text"]
    assert not tables["perplexity/sonar"]["features"]["tools"]
    assert tables["anthropic/claude-sonnet-4.5"]["reasoning"]["supports_max_tokens"] is True
    assert tables["openai/gpt-4o"]["knowledge_cutoff"] == "2023-10-01"


def test_what_has_no_catalog_field_is_reported(known: Catalog) -> None:
    _, report = imported(known, with_endpoints=False)
    assert report.dropped_prices == {"audio_output": 1}
    assert any("audio_output" in line for line in report.lines())


def test_endpoint_lists_give_per_provider_prices_context_and_quantization(known: Catalog) -> None:
    document, report = imported(known, with_endpoints=True)
    llama = {e.get("tag", e["provider"]): e
             for e in document["models"]["meta-llama/llama-3.3-70b-instruct"]["endpoints"]}
    assert set(llama) == {"deepinfra/turbo", "deepinfra/bf16", "groq", "together/fp8", "novita/bf16"}
    turbo = llama["deepinfra/turbo"]
    # The upstream id the catalog already has for that endpoint; OpenRouter's public list does not carry it.
    assert turbo["upstream_model"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert turbo["quantization"] == "fp8" and turbo["max_completion_tokens"] == 16384
    assert turbo["pricing"] == {"prompt": "0.1", "completion": "0.32"}
    assert llama["groq"]["pricing"] == {"prompt": "0.59", "completion": "0.79"}
    assert llama["novita/bf16"]["max_completion_tokens"] == 120000
    # Providers the catalog does not define are reported with the models they serve, not guessed.
    assert report.unknown_providers["Lambda"] == ["meta-llama/llama-3.3-70b-instruct"]
    assert "meta-llama/llama-3.3-70b-instruct" in report.unknown_providers["Fireworks"]
    assert "Amazon Bedrock" in report.unknown_providers and "Azure" in report.unknown_providers
    # An endpoint that differs from its model gets its own features; implicit caching is kept.
    groq = {e.get("tag", e["provider"]): e for e in document["models"]["openai/gpt-oss-120b"]["endpoints"]}["groq"]
    assert groq["supports_implicit_caching"] is True
    # The model's context is the widest of its endpoints'.
    glm = document["models"]["z-ai/glm-4.6"]
    assert glm["context_length"] == 204800
    assert {e.get("tag"): e["context_length"] for e in glm["endpoints"]} == {"deepinfra/fp8": 202752,
                                                                           "novita/fp8": 204800}


def test_an_endpoint_listing_the_providers_own_id_uses_it(known: Catalog) -> None:
    raw = json.loads((FIXTURES / "endpoints" / "openai--gpt-4o.json").read_bytes())
    raw["data"]["endpoints"][0]["provider_model_id"] = "gpt-4o-2024-11-20"
    lists = openrouter.decode_endpoints(json.dumps(raw).encode(), "gpt-4o")
    document, _ = importer.import_models(models(), lists, known)
    assert document["models"]["openai/gpt-4o"]["endpoints"][0]["upstream_model"] == "gpt-4o-2024-11-20"


def test_the_written_file_loads_over_the_builtin_catalog_with_the_listed_prices(known: Catalog, tmp_path: Path) -> None:
    document, report = imported(known, with_endpoints=True)
    path = tmp_path / "imported.toml"
    path.write_text(importer.to_toml(document, "models.json", "2026-12-01"))
    assert path.read_text().startswith("# Imported from models.json on 2026-12-01")
    assert tomllib.loads(path.read_text()) == document
    catalog = load([path], {})
    assert report.models == len(document["models"]) >= 20
    # Every price of every imported endpoint is OpenRouter's per-token string, exactly.
    lists = {x.data.id: x.data.endpoints for x in openrouter.read_endpoints(FIXTURES / "endpoints")}
    checked = 0
    for model_id, table in document["models"].items():
        model = catalog.models[model_id]
        for endpoint in table.get("endpoints", []):
            loaded = next(e for e in model.endpoints if e.tag == endpoint.get("tag", endpoint["provider"]))
            if model_id in lists:
                source = next(e.pricing for e in lists[model_id] if e.tag.partition("/")[2] ==
                              loaded.tag.partition("/")[2] and known.provider_slug(e.provider_name) ==
                              loaded.provider.slug)
            else:
                body = json.dumps({"data": [listed(model_id)]}).encode()
                source = openrouter.decode_models(body, "-").data[0].pricing
            assert loaded.pricing.prompt == Decimal(source.prompt), loaded.key
            assert loaded.pricing.completion == Decimal(source.completion), loaded.key
            if source.input_cache_read:
                assert loaded.pricing.input_cache_read == Decimal(source.input_cache_read), loaded.key
            checked += 1
    assert checked == report.endpoints >= 30
    gpt4o = catalog.models["openai/gpt-4o"]
    assert gpt4o.description == listed("openai/gpt-4o")["description"]
    assert gpt4o.features.tools and gpt4o.endpoints[0].pricing.prompt == Decimal("0.0000025")


def test_an_upstream_id_the_catalog_does_not_know_is_spelled_as_the_provider_does_and_reported(known: Catalog) -> None:
    document, report = imported(known, with_endpoints=False)
    haiku = document["models"]["anthropic/claude-haiku-4.5"]["endpoints"][0]
    assert haiku["upstream_model"] == "claude-haiku-4-5"  # Anthropic's alias, not "claude-haiku-4.5"
    assert document["models"]["openai/gpt-4.1"]["endpoints"][0]["upstream_model"] == "gpt-4.1"
    assert report.guessed_ids["anthropic/claude-haiku-4.5"] == ["anthropic"]
    assert "meta-llama/llama-3.3-70b-instruct" not in report.guessed_ids  # the catalog knows its ids
    assert any(line.startswith(f"{len(report.guessed_ids)} models have endpoints new to the catalog")
               for line in report.lines())
