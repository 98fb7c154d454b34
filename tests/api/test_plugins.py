"""Plugins end to end through the `openai` SDK (and the `anthropic` SDK for `/messages`), answered by the
simulator: response healing, context compression (and `middle-out`), the file parser."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog
from tests.plugins.pdf_support import pdf_data_url

CITY = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"], "additionalProperties": False}}}
HEALING = [{"id": "response-healing"}]


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


def catalog(sim: SimServer, **models: list[dict[str, Any]]) -> str:
    return upstream_catalog(sim.url, {f"test/{name}": entries for name, entries in models.items()})


# -- response-healing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["fence", "trailing", "truncate"])
async def test_a_broken_json_reply_is_healed(start_gateway: GatewayFactory, sim: SimServer, how: str) -> None:
    toml = catalog(sim, json=[{"provider": "alpha", "upstream_model": f"m#broken_json={how}"}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        ask = {"model": "test/json", "messages": [{"role": "user", "content": "A city"}], "response_format": CITY}
        raw = await c.chat.completions.create(**ask)  # type: ignore[call-overload]
        healed = await c.chat.completions.create(**ask, extra_body={"plugins": HEALING})  # type: ignore[call-overload]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.choices[0].message.content)
    city = json.loads(healed.choices[0].message.content)
    assert set(city) == {"name", "population"} and isinstance(city["population"], int)


async def test_a_streamed_json_reply_is_healed_before_the_client_sees_it(start_gateway: GatewayFactory,
                                                                         sim: SimServer) -> None:
    toml = catalog(sim, json=[{"provider": "alpha", "upstream_model": "m#broken_json=fence"}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        stream = await c.chat.completions.create(
            model="test/json", messages=[{"role": "user", "content": "A city"}], response_format=CITY,  # type: ignore[arg-type]
            stream=True, extra_body={"plugins": HEALING})
        chunks = [chunk async for chunk in stream]
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert set(json.loads(content)) == {"name", "population"}
    finishes = [i for i, ch in enumerate(chunks) if ch.choices and ch.choices[0].finish_reason]
    contents = [i for i, ch in enumerate(chunks) if ch.choices and ch.choices[0].delta.content]
    assert finishes == [max(finishes)] and contents[-1] < finishes[0]  # the content precedes the finish
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_healing_through_the_messages_api(start_gateway: GatewayFactory, sim: SimServer) -> None:
    toml = catalog(sim, json=[{"provider": "alpha", "upstream_model": "m#broken_json=trailing"}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw:
        messages = anthropic.AsyncAnthropic(base_url=gw.root + "/api", api_key=gw.key, max_retries=0)
        reply = await messages.messages.create(
            model="test/json", max_tokens=200, messages=[{"role": "user", "content": "A city"}],
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": CITY["json_schema"]["schema"]}},
                        "plugins": HEALING})
        await messages.close()
    text = "".join(block.text for block in reply.content if block.type == "text")
    assert set(json.loads(text)) == {"name", "population"}


# -- context-compression / middle-out ----------------------------------------------------------------------

def long_conversation(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are terse."}]
    for i in range(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 400})
    messages.append({"role": "user", "content": "and the last question"})
    return messages


@pytest.mark.parametrize("ask", [{"plugins": [{"id": "context-compression"}]}, {"transforms": ["middle-out"]}])
async def test_a_prompt_over_the_context_loses_its_middle(start_gateway: GatewayFactory, sim: SimServer,
                                                          ask: dict[str, Any]) -> None:
    toml = catalog(sim, small=[{"provider": "alpha", "upstream_model": "m", "context_length": 1000}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        messages = long_conversation(20)  # about 2,100 tokens
        completion = await c.chat.completions.create(model="test/small", messages=messages, max_tokens=100,  # type: ignore[arg-type]
                                                     extra_body=ask)
        sent = sim.requests[-1].body["messages"]
    assert completion.choices[0].message.content
    assert sent[0] == messages[0] and sent[1] == messages[1] and sent[-1] == messages[-1]
    assert 3 <= len(sent) < len(messages)
    assert sum(len(m["content"]) for m in sent) // 4 + 100 <= 1000
    assert "turn 10 " not in json.dumps(sent)  # the middle went first


async def test_without_compression_a_prompt_over_every_context_is_a_400(start_gateway: GatewayFactory,
                                                                        sim: SimServer) -> None:
    toml = catalog(sim, small=[{"provider": "alpha", "upstream_model": "m", "context_length": 1000}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="test/small", messages=long_conversation(20),  # type: ignore[arg-type]
                                            max_tokens=100)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == 400 and "middle-out" in body["message"]
    assert not sim.requests


async def test_compression_streams_too(start_gateway: GatewayFactory, sim: SimServer) -> None:
    toml = catalog(sim, small=[{"provider": "alpha", "upstream_model": "m", "context_length": 1000}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        stream = await c.chat.completions.create(model="test/small", messages=long_conversation(20),  # type: ignore[arg-type]
                                                 max_tokens=100, stream=True, extra_body={"transforms": ["middle-out"]})
        chunks = [chunk async for chunk in stream]
    assert any(ch.choices and ch.choices[0].delta.content for ch in chunks)
    assert len(sim.requests[-1].body["messages"]) < 22


# -- file-parser ---------------------------------------------------------------------------------------------

def pdf_message(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [
        {"type": "text", "text": "What is the secret word?"},
        {"type": "file", "file": {"filename": "secret.pdf", "file_data": pdf_data_url(text)}}]}]


async def test_a_pdf_becomes_text_for_a_model_without_file_input(start_gateway: GatewayFactory,
                                                                 sim: SimServer) -> None:
    toml = catalog(sim, text=[{"provider": "alpha", "upstream_model": "m"}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        with pytest.raises(openai.NotFoundError):  # without the plugin no endpoint takes the file
            await c.chat.completions.create(model="test/text", messages=pdf_message("pelican"))  # type: ignore[arg-type]
        completion = await c.chat.completions.create(
            model="test/text", messages=pdf_message("The secret word is pelican."),  # type: ignore[arg-type]
            extra_body={"plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]})
        sent = sim.requests[-1].body["messages"][0]["content"]
    assert completion.choices[0].message.content
    assert [part["type"] for part in sent] == ["text", "text"]
    assert "The secret word is pelican." in sent[1]["text"] and "secret.pdf" in sent[1]["text"]


async def test_native_pdf_input_gets_the_file_itself(start_gateway: GatewayFactory, sim: SimServer) -> None:
    toml = catalog(sim, pdf=[{"provider": "alpha", "upstream_model": "m", "input_modalities": ["text", "file"]}])
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        for plugin in ({"id": "file-parser"}, {"id": "file-parser", "pdf": {"engine": "native"}}):
            await c.chat.completions.create(model="test/pdf", messages=pdf_message("pelican"),  # type: ignore[arg-type]
                                            extra_body={"plugins": [plugin]})
            sent = sim.requests[-1].body["messages"][0]["content"]
            assert [part["type"] for part in sent] == ["text", "file"]
        await c.chat.completions.create(model="test/pdf", messages=pdf_message("The word is heron."),  # type: ignore[arg-type]
                                        extra_body={"plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]})
        assert "The word is heron." in sim.requests[-1].body["messages"][0]["content"][1]["text"]


async def test_an_unreadable_pdf_is_a_400(start_gateway: GatewayFactory, sim: SimServer) -> None:
    toml = catalog(sim, text=[{"provider": "alpha", "upstream_model": "m"}])
    messages = [{"role": "user", "content": [{"type": "file", "file": {
        "filename": "bad.pdf", "file_data": "data:application/pdf;base64,bm90IGEgcGRm"}}]}]
    async with start_gateway(env=provider_keys("alpha"), catalog=toml) as gw, client(gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="test/text", messages=messages,  # type: ignore[arg-type]
                                            extra_body={"plugins": [{"id": "file-parser"}]})
    assert "bad.pdf is not a readable PDF" in str(caught.value)


# -- web -----------------------------------------------------------------------------------------------------

def priced_catalog(sim: SimServer) -> str:
    toml = catalog(sim, web=[{"provider": "alpha", "upstream_model": "m"}])  # $1 and $2 per million tokens
    return toml.replace('completion = "2" }', 'completion = "2", web_search = "0.005" }')


#: Each search API's base URL under the simulator.
SEARCH_ROOTS = {"exa": "/exa", "tavily": "/tavily", "brave": "/brave/res/v1", "searxng": "/searxng"}


@pytest.mark.parametrize("api", list(SEARCH_ROOTS))
async def test_web_results_reach_the_model_and_come_back_as_citations(start_gateway: GatewayFactory,
                                                                      sim: SimServer, api: str) -> None:
    env = {**provider_keys("alpha"), "CROSSROADS_WEB_SEARCH_API": api,
           "CROSSROADS_WEB_SEARCH_URL": sim.url + SEARCH_ROOTS[api], "CROSSROADS_WEB_SEARCH_KEY": "search-key"}
    async with start_gateway(env=env, catalog=priced_catalog(sim)) as gw, client(gw) as c:
        completion = await c.chat.completions.create(
            model="test/web", messages=[{"role": "user", "content": "Who won the 2026 regatta?"}],
            extra_body={"plugins": [{"id": "web", "max_results": 3, "search_prompt": "Results follow."}]})
        sent = sim.requests[-1].body["messages"][-1]["content"]
        record = gw.services.ledger.recent(completion.id)
    annotations = completion.choices[0].message.model_dump()["annotations"]
    assert len(annotations) == 3
    citation = annotations[0]["url_citation"]
    assert annotations[0]["type"] == "url_citation"
    assert citation["url"].startswith("https://site1.example.org/who-won-the-2026-regatta")
    assert citation["title"] and citation["content"]
    assert sent.startswith("Who won the 2026 regatta?\n\nResults follow.")
    assert all(a["url_citation"]["url"] in sent for a in annotations)
    assert "on Who won the 2026 regatta?: what the web says" in sent and "<strong>" not in sent
    # the search is charged at the endpoint's web_search price
    assert record is not None and record.cost_nanos >= 5_000_000  # what the key is charged includes it
    usage = completion.usage
    assert usage is not None
    tokens = (usage.prompt_tokens * 1 + usage.completion_tokens * 2) / 1_000_000
    assert (usage.model_extra or {})["cost"] == pytest.approx(tokens + 0.005, abs=1e-9)
    assert (usage.model_extra or {})["server_tool_use_details"] == {"web_search_requests": 1}


async def test_the_online_variant_is_the_web_plugin_and_streams_its_citations(gateway: Gateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="openai/gpt-4o-mini:online", messages=[{"role": "user", "content": "Latest news on pelicans"}],
            stream=True)
        chunks = [chunk async for chunk in stream]
    deltas = [(ch.choices[0].delta.model_extra or {}) for ch in chunks if ch.choices]
    annotations = [d["annotations"] for d in deltas if d.get("annotations")]
    assert len(annotations) == 1 and len(annotations[0]) == 5  # max_results' default
    assert annotations[0][0]["url_citation"]["url"].startswith("https://site1.example.org/latest-news-on-pelicans")
    assert chunks[-1].model == "openai/gpt-4o-mini"
    finish = next(i for i, ch in enumerate(chunks) if ch.choices and ch.choices[0].finish_reason)
    annotated = next(i for i, ch in enumerate(chunks) if ch.choices and
                     (ch.choices[0].delta.model_extra or {}).get("annotations"))
    assert annotated < finish


async def test_web_without_a_search_backend_is_a_400(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=priced_catalog(sim)) as gw, client(gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="test/web", messages=[{"role": "user", "content": "x"}],
                                            extra_body={"plugins": [{"id": "web"}]})
    assert "the plugin 'web' needs a web search backend" in str(caught.value)
