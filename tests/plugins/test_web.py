"""Who searches for the `web` plugin: the endpoint's provider or the gateway's backend (the simulator's
Brave-shaped search here), what each endpoint receives, and which endpoints are charged and cited."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import InvalidParameter
from crossroads.plugins import fit
from crossroads.plugins.web import search_into, searches_natively, uses_results
from crossroads.providers.search import WebSearch
from crossroads.providers.transport import Transport
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest
from crossroads.sim import SimServer

PLAIN = Endpoint(model_id="t/m", provider=Provider(slug="p", name="P", wire_format="openai_chat",
                                                    base_url="https://p.example", api_key="k",
                                                    data_policy=DataPolicy()),
                 tag="p", upstream_model="m", context_length=8000, max_completion_tokens=None, max_prompt_tokens=None,
                 quantization=None, pricing=Pricing(prompt=Decimal(0), completion=Decimal(0)), features=Features(),
                 input_modalities=frozenset({"text"}))
SEARCHING = dataclasses.replace(PLAIN, tag="p/search", features=Features(web_search=True))


@pytest.fixture
async def brave(sim: SimServer) -> AsyncIterator[WebSearch]:
    transport = Transport(connect_timeout=5, read_timeout=5, first_byte_timeout=5)
    yield WebSearch(transport, "brave", f"{sim.url}/brave/res/v1", "token")
    await transport.close()


def request(**plugin: Any) -> ChatRequest:
    return parse_chat_request({"model": "t/m", "messages": [{"role": "user", "content": "tide tables"}],
                               "plugins": [{"id": "web", **plugin}]}, "t/m")


async def test_without_an_engine_each_endpoint_searches_its_own_way(brave: WebSearch) -> None:
    asked = request(max_results=2, include_domains=["example.org"])
    prepared = await search_into(asked, asked.plugins[0], brave)
    assert prepared.params["web_search_options"] == {"allowed_domains": ["example.org"]}
    assert searches_natively(prepared, SEARCHING) and not uses_results(prepared, SEARCHING)
    assert fit(prepared, SEARCHING).messages == prepared.messages  # no results in its prompt
    assert uses_results(prepared, PLAIN) and not searches_natively(prepared, PLAIN)
    sent = fit(prepared, PLAIN).messages[-1]["content"]
    assert sent.startswith("tide tables\n\nA web search was conducted") and "<strong>" not in sent
    assert sent.count("URL: https://site") == 2
    assert prepared.applied is not None and prepared.applied.web_searches == 1


async def test_a_named_engine_is_the_backend_everywhere_and_native_needs_none(brave: WebSearch) -> None:
    named = request(engine="exa")
    prepared = await search_into(named, named.plugins[0], brave)
    assert "web_search_options" not in prepared.params
    assert uses_results(prepared, SEARCHING) and "A web search" in fit(prepared, SEARCHING).messages[-1]["content"]
    native = request(engine="native", max_uses=2, exclude_domains=["spam.example"])
    prepared = await search_into(native, native.plugins[0], None)
    assert prepared.params["web_search_options"] == {"max_uses": 2, "blocked_domains": ["spam.example"]}
    assert prepared.applied is None or prepared.applied.web_context is None
    assert fit(prepared, PLAIN).messages == prepared.messages  # served without a search, as OpenRouter drops it


async def test_an_endpoint_with_no_way_to_search_refuses() -> None:
    plain = request()
    prepared = await search_into(plain, plain.plugins[0], None)
    assert fit(prepared, SEARCHING).params["web_search_options"] == {}
    with pytest.raises(InvalidParameter, match="needs a web search backend"):
        fit(prepared, PLAIN)
    named = request(engine="tavily")
    with pytest.raises(InvalidParameter, match="needs a web search backend"):
        await search_into(named, named.plugins[0], None)
