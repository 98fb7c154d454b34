"""Where Vertex AI and Azure OpenAI requests go: each publisher's URL on Vertex, and Azure's two URL forms."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.providers.azure_openai import AzureOpenAI
from crossroads.providers.vertex import Vertex
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest

VERTEX_BASE = "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5"


def endpoint(wire_format: str, base_url: str, upstream: str, options: tuple[tuple[str, str], ...] = (),
             key: str | None = "k") -> Endpoint:
    provider = Provider(slug=wire_format, name=wire_format, wire_format=wire_format,  # type: ignore[arg-type]
                        base_url=base_url, api_key=key, data_policy=DataPolicy(), options=options)
    return Endpoint(model_id="a/b", provider=provider, tag=wire_format, upstream_model=upstream,
                    context_length=100000, max_completion_tokens=1000, max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal(0), completion=Decimal(0)), features=Features(tools=True),
                    input_modalities=frozenset({"text"}))


def request(stream: bool = False) -> ChatRequest:
    return parse_chat_request({"model": "a/b", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
                              "a/b")


@pytest.mark.parametrize(("upstream", "stream", "path"), [
    ("google/gemini-2.5-pro", False, "/publishers/google/models/gemini-2.5-pro:generateContent"),
    ("google/gemini-2.5-pro", True, "/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
    ("anthropic/claude-sonnet-4@20250514", True,
     "/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
    ("meta/llama-3.3-70b-instruct-maas", False, "/endpoints/openapi/chat/completions"),
])
def test_vertex_urls_by_publisher(upstream: str, stream: bool, path: str) -> None:
    built = Vertex().build_request(request(stream), endpoint("vertex", VERTEX_BASE, upstream))
    assert built.url == VERTEX_BASE + path
    assert built.headers["Authorization"] == "Bearer k"
    assert not {"x-goog-api-key", "x-api-key", "anthropic-version"} & set(built.headers)
    body = orjson.loads(built.body)
    if upstream.startswith("meta/"):
        assert body["model"] == upstream  # the OpenAI-compatible endpoint names publisher and model in the body
    elif upstream.startswith("anthropic/"):
        assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16" and body["stream"] is True


def test_vertex_sends_no_credentials_of_its_own_without_a_token() -> None:
    built = Vertex().build_request(request(), endpoint("vertex", VERTEX_BASE, "google/gemini-2.5-pro", key=None))
    assert "Authorization" not in built.headers  # the transport's authenticator adds the OAuth2 token


@pytest.mark.parametrize(("version", "url"), [
    ("2024-10-21", "https://r.openai.azure.com/openai/deployments/my%2Fgpt/chat/completions?api-version=2024-10-21"),
    ("v1", "https://r.openai.azure.com/openai/v1/chat/completions"),
])
def test_azure_urls(version: str, url: str) -> None:
    target = endpoint("azure_openai", "https://r.openai.azure.com", "my/gpt", (("api_version", version),))
    built = AzureOpenAI().build_request(request(), target)
    assert built.url == url
    assert built.headers["api-key"] == "k" and "Authorization" not in built.headers
    assert orjson.loads(built.body)["model"] == "my/gpt"
