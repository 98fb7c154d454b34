"""The built-in catalog (`crossroads/catalog/data/*.toml`, merged) meets the product requirements: enough real
models and providers, open models served by several providers at different prices, every wire format, local
servers that stay off until configured, and sane numbers everywhere."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from decimal import Decimal
from importlib import resources

import pytest

from crossroads.catalog.loader import env_name, load
from crossroads.catalog.types import PRICE_KEYS, Catalog, Model
from crossroads.catalog.wire_formats import WIRE_FORMATS

LOCAL_SERVERS = {
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    "llama-cpp": "http://localhost:8080/v1",
    "lm-studio": "http://localhost:1234/v1",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load([], {})


def test_at_least_40_models(catalog: Catalog) -> None:
    assert len(catalog.models) >= 40


def test_at_least_12_hosted_providers(catalog: Catalog) -> None:
    hosted = [p for p in catalog.providers.values() if not p.local]
    assert len(hosted) >= 12
    for slug in ("openai", "anthropic", "google-ai-studio", "mistral", "deepseek", "xai", "groq", "together",
                 "deepinfra", "fireworks"):
        assert slug in catalog.providers, slug


def test_every_hosted_provider_serves_something(catalog: Catalog) -> None:
    used = {e.provider.slug for m in catalog.models.values() for e in m.endpoints}
    assert {p.slug for p in catalog.providers.values()} <= used


def test_open_models_have_several_providers_at_different_prices(catalog: Catalog) -> None:
    multi = []
    for model in catalog.models.values():
        if not model.hugging_face_id:
            continue
        paid = [e for e in model.endpoints if not e.provider.local]
        prices = {(e.pricing.prompt, e.pricing.completion) for e in paid}
        if len({e.provider.slug for e in paid}) >= 3 and len(prices) >= 3:
            multi.append(model.id)
    assert len(multi) >= 3, multi


def test_every_wire_format_is_used(catalog: Catalog) -> None:
    assert {p.wire_format for p in catalog.providers.values()} == set(WIRE_FORMATS)


def test_local_servers_are_off_until_given_a_base_url(catalog: Catalog) -> None:
    for slug, url in LOCAL_SERVERS.items():
        provider = catalog.providers[slug]
        assert provider.local
        assert provider.base_url == url
        assert not provider.enabled
        assert not provider.configured
        assert any(e.provider.slug == slug for m in catalog.models.values() for e in m.endpoints), slug

    environ = {f"CROSSROADS_PROVIDER_{env_name(slug)}_BASE_URL": url for slug, url in LOCAL_SERVERS.items()}
    configured = load([], environ)
    for slug in LOCAL_SERVERS:
        assert configured.providers[slug].enabled
        assert configured.providers[slug].configured


def test_local_endpoints_are_free(catalog: Catalog) -> None:
    for model in catalog.models.values():
        for endpoint in model.endpoints:
            if endpoint.provider.local:
                assert endpoint.pricing.is_free(), endpoint.key


def test_hosted_providers_have_keys_and_https(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        if provider.local:
            continue
        assert provider.api_key_env or provider.credentials, provider.slug
        assert provider.base_url.startswith("https://"), provider.slug
        assert provider.api_key is None  # no key in an empty environment
        assert not provider.configured, provider.slug  # nor a cloud's region or project


def test_prices_are_non_negative_and_hosted_ones_are_not_free(catalog: Catalog) -> None:
    for model in catalog.models.values():
        for endpoint in model.endpoints:
            for key in PRICE_KEYS:
                value = getattr(endpoint.pricing, key)
                assert value is None or value >= 0, (endpoint.key, key)
            if not endpoint.provider.local:
                # A reranker may charge per search rather than per token.
                assert endpoint.pricing.prompt > 0 or endpoint.pricing.request, endpoint.key
                # Embeddings and rankings have no output tokens: those models charge for input only.
                assert endpoint.pricing.completion > 0 or "text" not in model.output_modalities, endpoint.key
                # USD per million tokens was divided down to per token: nothing costs $1000/M or more.
                assert endpoint.pricing.completion < Decimal("0.001"), endpoint.key


def test_output_caps_fit_the_context(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert model.endpoints, model.id
        for endpoint in model.endpoints:
            assert endpoint.context_length > 0
            if endpoint.max_completion_tokens is not None:
                assert endpoint.max_completion_tokens <= endpoint.context_length, endpoint.key


def test_model_metadata_is_filled_in(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert ": " in model.name, model.id
        assert model.description, model.id
        assert model.created > 1_600_000_000, model.id
        assert model.tokenizer, model.id
        for endpoint in model.endpoints:
            assert endpoint.upstream_model, endpoint.key
            assert endpoint.quantization, endpoint.key


def test_reasoning_models_say_so(catalog: Catalog) -> None:
    for model_id in ("openai/o3", "openai/gpt-5", "anthropic/claude-sonnet-4", "google/gemini-2.5-pro",
                     "deepseek/deepseek-r1-0528", "openai/gpt-oss-120b",
                     "qwen/qwen3-235b-a22b-thinking-2507"):
        model = catalog.models[model_id]
        assert model.reasoning is not None, model_id
        assert model.features.reasoning, model_id


def test_a_provider_variant_is_tagged(catalog: Catalog) -> None:
    tags = {e.tag for e in catalog.models["meta-llama/llama-3.3-70b-instruct"].endpoints}
    assert {"deepinfra", "deepinfra/turbo"} <= tags


def test_known_upstream_ids(catalog: Catalog) -> None:
    llama = catalog.models["meta-llama/llama-3.3-70b-instruct"]
    upstream = {e.tag: e.upstream_model for e in llama.endpoints}
    assert upstream["groq"] == "llama-3.3-70b-versatile"
    assert upstream["together"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert upstream["deepinfra"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert upstream["fireworks"] == "accounts/fireworks/models/llama-v3p3-70b-instruct"


# -- the catalog as a whole: every built-in file (catalog.toml, providers.toml, models.toml, ...) merged --------

DATA = resources.files("crossroads.catalog").joinpath("data")


def test_at_least_150_models_and_30_providers(catalog: Catalog) -> None:
    assert len(catalog.models) >= 150
    assert len(catalog.providers) >= 30
    assert len([p for p in catalog.providers.values() if not p.local]) >= 25


def test_every_model_has_an_endpoint_and_every_file_its_date(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert model.endpoints, model.id
    for entry in DATA.iterdir():
        if entry.name.endswith(".toml"):
            assert re.search(r"Compiled 20\d\d-\d\d", entry.read_text("utf-8")), entry.name


def test_every_price_in_the_files_is_an_exact_decimal_string() -> None:
    """TOML strings keep prices exact; a float (`0.1`) or a malformed string would not."""
    for entry in DATA.iterdir():
        if not entry.name.endswith(".toml"):
            continue
        document = tomllib.loads(entry.read_text("utf-8"))
        for model_id, model in document.get("models", {}).items():
            for endpoint in model.get("endpoints", []):
                for key, value in endpoint.get("pricing", {}).items():
                    assert isinstance(value, str), (entry.name, model_id, key)
                    assert Decimal(value).is_finite() and Decimal(value) >= 0, (entry.name, model_id, key)


def test_the_catalog_covers_every_kind_of_model(catalog: Catalog) -> None:
    """Image, PDF and audio input, reasoning, and embedding models, each from several vendors."""
    def authors(keep: Callable[[Model], bool]) -> set[str]:
        return {m.author for m in catalog.models.values() if keep(m)}

    assert len(authors(lambda m: "image" in m.input_modalities)) >= 6
    assert len(authors(lambda m: "file" in m.input_modalities)) >= 3
    assert len(authors(lambda m: "audio" in m.input_modalities)) >= 3
    assert len(authors(lambda m: m.reasoning is not None)) >= 8
    assert len(authors(lambda m: "embeddings" in m.output_modalities)) >= 6
    assert authors(lambda m: "image" in m.output_modalities)
    for model in catalog.models.values():
        assert model.input_modalities and model.output_modalities, model.id
        for endpoint in model.endpoints:
            assert endpoint.input_modalities <= set(model.input_modalities), endpoint.key


def test_every_model_is_served_by_the_simulator_in_its_providers_format() -> None:
    simulated = load([], {}, simulator_url="http://127.0.0.1:1")
    for model in simulated.models.values():
        simulator = [e for e in model.endpoints if e.is_simulator]
        assert len(simulator) == 1, model.id
        hosted = [e for e in model.endpoints if not e.is_simulator and not e.provider.local]
        if hosted:
            assert simulator[0].provider.wire_format in {e.provider.wire_format for e in hosted}, model.id
