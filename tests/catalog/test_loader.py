"""The catalog loader: provider settings from the environment, merging extra files, and clear errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from crossroads.catalog.loader import env_name, load, simulator_base_url
from crossroads.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.toml"
    path.write_text(text)
    return path


def test_env_names() -> None:
    assert env_name("llama-cpp") == "LLAMA_CPP" and env_name("google-ai-studio") == "GOOGLE_AI_STUDIO"


def test_keys_from_crossroads_variables_or_the_conventional_ones() -> None:
    catalog = load([], {"OPENAI_API_KEY": "a", "CROSSROADS_PROVIDER_GROQ_API_KEY": "b"})
    assert catalog.providers["openai"].api_key == "a" and catalog.providers["openai"].configured
    assert catalog.providers["groq"].api_key == "b"
    assert not catalog.providers["anthropic"].configured  # listed, but unavailable


def test_base_url_override_and_local_servers() -> None:
    catalog = load([], {"CROSSROADS_PROVIDER_OPENAI_BASE_URL": "http://proxy:9/v1/"})
    assert catalog.providers["openai"].base_url == "http://proxy:9/v1"
    assert not catalog.providers["ollama"].configured
    enabled = load([], {"CROSSROADS_PROVIDER_OLLAMA_BASE_URL": "http://box:11434/v1"})
    assert enabled.providers["ollama"].configured and enabled.providers["ollama"].base_url == "http://box:11434/v1"


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="CROSSROADS_PROVIDER_OPENAI_BASE_URL"):
        load([], {"CROSSROADS_PROVIDER_OPENAI_BASE_URL": "api.openai.com"})


def test_extra_file_adds_a_model_and_changes_a_price(tmp_path: Path) -> None:
    extra = write(tmp_path, """
[providers.mybox]
name = "My Box"
base_url = "http://box:8000/v1"
local = true
enabled = true

[models."local/tiny"]
name = "Tiny"
context_length = 4096

[[models."local/tiny".endpoints]]
provider = "mybox"
pricing = { prompt = "0", completion = "0" }

[[models."openai/gpt-4o".endpoints]]
provider = "openai"
pricing = { prompt = "1.25", completion = "5" }
""")
    catalog = load([extra], {})
    tiny = catalog.models["local/tiny"]
    assert tiny.endpoints[0].provider.name == "My Box" and tiny.endpoints[0].provider.configured
    assert tiny.endpoints[0].upstream_model == "tiny"
    gpt = catalog.models["openai/gpt-4o"]
    openai = next(e for e in gpt.endpoints if e.provider.slug == "openai")
    assert openai.pricing.prompt == Decimal("1.25") / 1_000_000
    assert openai.upstream_model  # the built-in fields survive the merge


def test_disabling_a_model(tmp_path: Path) -> None:
    catalog = load([write(tmp_path, '[models."openai/gpt-4o"]\ndisabled = true\n')], {})
    assert "openai/gpt-4o" not in catalog.models


@pytest.mark.parametrize(("text", "message"), [
    ('[models."x/y"]\ncontext_length = 0\n', "context_length"),
    ('[models."xy"]\ncontext_length = 10\n', "author/slug"),
    ('[[models."openai/gpt-4o".endpoints]]\nprovider = "nobody"\npricing = {prompt="1", completion="1"}\n',
     "unknown provider"),
    ('[[models."openai/gpt-4o".endpoints]]\nprovider = "groq"\ntag = "groq/x"\npricing = {prompt="1"}\n', "pricing"),
    ('[[models."openai/gpt-4o".endpoints]]\nprovider = "groq"\ntag = "g/q"\n'
     'pricing = {prompt="x", completion="1"}\n', "not a number"),
    ('[[models."openai/gpt-4o".endpoints]]\nprovider = "groq"\ntag = "g/q"\nquantization = "int3"\n'
     'pricing = {prompt="1", completion="1"}\n', "quantization"),
    ('[providers.x]\nname = "X"\nwire_format = "soap"\nbase_url = "http://x"\n', "wire_format"),
    ('[routing]\ndeny = ["nobody"]\n', "routing"),
    ("not toml [", "not valid TOML"),
])
def test_bad_catalog_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load([write(tmp_path, text)], {})


def test_simulator_endpoint_mirrors_the_cheapest_hosted_price() -> None:
    catalog = load([], {}, simulator_url="http://127.0.0.1:1")
    model = catalog.models["meta-llama/llama-3.1-8b-instruct"]
    sim = next(e for e in model.endpoints if e.is_simulator)
    hosted = [e for e in model.endpoints if not e.provider.local and not e.is_simulator]
    assert sim.pricing == min(hosted, key=lambda e: e.pricing.blended()).pricing
    assert sim.pricing.prompt > 0


def test_the_simulator_speaks_each_models_own_wire_format() -> None:
    catalog = load([], {}, simulator_url="http://127.0.0.1:1")
    formats = {}
    for model_id in ("openai/gpt-4o", "anthropic/claude-sonnet-4.5", "google/gemini-2.5-flash"):
        sim = next(e for e in catalog.models[model_id].endpoints if e.is_simulator)
        formats[model_id] = (sim.provider.wire_format, sim.provider.base_url)
    assert formats == {
        "openai/gpt-4o": ("openai_chat", "http://127.0.0.1:1/v1"),
        "anthropic/claude-sonnet-4.5": ("anthropic_messages", "http://127.0.0.1:1"),
        "google/gemini-2.5-flash": ("gemini", "http://127.0.0.1:1"),
    }


def test_the_simulator_base_url_is_overridden_like_any_providers() -> None:
    assert simulator_base_url({}) is None
    for url in ("http://sim:8090", "http://sim:8090/", "http://sim:8090/v1", "http://sim:8090/v1/"):
        assert simulator_base_url({"CROSSROADS_PROVIDER_SIMULATOR_BASE_URL": url}) == "http://sim:8090"
    with pytest.raises(ConfigError, match="CROSSROADS_PROVIDER_SIMULATOR_BASE_URL"):
        simulator_base_url({"CROSSROADS_PROVIDER_SIMULATOR_BASE_URL": "sim:8090"})
    catalog = load([], {"CROSSROADS_PROVIDER_SIMULATOR_API_KEY": "sim-key"}, simulator_url="http://sim:8090")
    assert catalog.providers["simulator"].api_key == "sim-key"


def test_cloud_options_fill_the_base_url_from_the_environment() -> None:
    env = {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-west-2", "GOOGLE_CLOUD_PROJECT": "proj-1",
           "CROSSROADS_PROVIDER_GOOGLE_VERTEX_REGION": "europe-west4", "CROSSROADS_PROVIDER_AZURE_RESOURCE": "res",
           "OPENAI_API_VERSION": "v1"}
    providers = load([], env).providers
    bedrock, vertex, azure = providers["amazon-bedrock"], providers["google-vertex"], providers["azure"]
    assert bedrock.base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"  # the first standard variable
    assert bedrock.option("region") == "us-west-2" and bedrock.configured  # the credential chain signs
    assert vertex.base_url == "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj-1/locations/europe-west4"
    assert vertex.configured
    assert azure.base_url == "https://res.openai.azure.com" and azure.option("api_version") == "v1"
    assert azure.configured and azure.credentials == "azure"  # Entra ID tokens, without a key
    assert load([], {**env, "AZURE_OPENAI_API_KEY": "k"}).providers["azure"].configured
    key_only = load([], {**env, "CROSSROADS_PROVIDER_AZURE_AUTH": "key"}).providers["azure"]
    assert not key_only.configured and key_only.credentials is None  # `auth = "key"` needs the key
    assert load([], {**env, "CROSSROADS_PROVIDER_AZURE_AUTH": "entra"}).providers["azure"].option("auth") == "entra"
    crossroads_first = load([], {**env, "CROSSROADS_PROVIDER_AMAZON_BEDROCK_REGION": "ap-south-1"})
    assert crossroads_first.providers["amazon-bedrock"].option("region") == "ap-south-1"


def test_a_cloud_without_its_region_or_project_cannot_serve() -> None:
    providers = load([], {"AWS_BEARER_TOKEN_BEDROCK": "key", "CROSSROADS_PROVIDER_AZURE_API_VERSION": "2025-04-01"})
    assert providers.providers["amazon-bedrock"].api_key == "key"
    assert not providers.providers["amazon-bedrock"].configured  # a key, but no region
    vertex = providers.providers["google-vertex"]
    assert not vertex.configured and vertex.option("region") == "us-east5"  # the catalog's default
    assert providers.providers["azure"].option("api_version") == "2025-04-01"


def test_option_values_that_would_change_the_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="CROSSROADS_PROVIDER_AMAZON_BEDROCK_REGION"):
        load([], {"CROSSROADS_PROVIDER_AMAZON_BEDROCK_REGION": "evil.example/#"})


def test_claude_gpt_and_gemini_list_their_cloud_endpoints() -> None:
    models = load([], {}).models
    tags = {model: [e.provider.slug for e in models[model].endpoints]
            for model in ("anthropic/claude-sonnet-4.5", "openai/gpt-4o", "google/gemini-2.5-pro")}
    assert tags == {"anthropic/claude-sonnet-4.5": ["anthropic", "amazon-bedrock", "google-vertex"],
                    "openai/gpt-4o": ["openai", "azure"],
                    "google/gemini-2.5-pro": ["google-ai-studio", "google-vertex"]}
