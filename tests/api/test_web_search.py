"""Native web search end to end: an unchanged `openai` SDK client → Crossroads (the built-in catalog's
OpenAI, Anthropic and Google AI Studio providers, pointed at the simulator) → each provider's own search —
OpenAI's search models, Anthropic's `web_search` server tool, Gemini's `google_search` — and its citations
back as `url_citation` annotations, each search charged at the endpoint's `web_search` price. Beside it, the
search backend where the endpoint has no search of its own or the `web` plugin names another engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from crossroads.sim import SimServer
from tests.api.conftest import client, providers
from tests.conftest import Gateway, GatewayFactory
from tests.openapi import validate_component, validate_response

QUESTION = "Who won the 2026 pelican regatta?"
#: model → (what the upstream request must hold to search natively, the endpoint's prices per token and
#: per search).
NATIVE = {
    "anthropic/claude-sonnet-4.5": (lambda body: {"type": "web_search_20250305", "name": "web_search"}
                                    in body.get("tools", ()), ("3", "15"), "0.01"),
    "google/gemini-2.5-flash": (lambda body: {"google_search": {}} in body.get("tools", ()), ("0.30", "2.50"),
                                "0.035"),
    "openai/gpt-4o-mini-search-preview": (lambda body: "web_search_options" in body, ("0.15", "0.60"), "0.025"),
}


async def ask(gw: Gateway, model: str, stream: bool, **extra: Any) -> tuple[str, list[dict[str, Any]], Any]:
    """(content, annotations, usage) of one question, streamed or not."""
    async with client(gw) as c:
        messages = [{"role": "user", "content": QUESTION}]
        if not stream:
            completion = await c.chat.completions.create(model=model, messages=messages,  # type: ignore[arg-type]
                                                         extra_body=extra)
            message = completion.choices[0].message.model_dump()
            return message["content"], message.get("annotations") or [], completion.usage
        chunks = [chunk async for chunk in await c.chat.completions.create(
            model=model, messages=messages, stream=True, extra_body=extra)]  # type: ignore[arg-type]
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    annotations = [a for ch in chunks if ch.choices for a in (ch.choices[0].delta.model_extra or {}).get(
        "annotations") or ()]
    return content, annotations, chunks[-1].usage


def sent(sim: SimServer) -> dict[str, Any]:
    body: dict[str, Any] = next(r.body for r in reversed(sim.requests) if r.method == "POST")
    return body


def cost(usage: Any, prices: tuple[str, str], searches: int, per_search: str) -> Decimal:
    prompt, completion = (Decimal(p) / 1_000_000 for p in prices)
    return usage.prompt_tokens * prompt + usage.completion_tokens * completion + searches * Decimal(per_search)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("model", list(NATIVE))
async def test_the_web_plugin_searches_natively_where_the_endpoint_can(search_gw: Gateway, sim: SimServer,
                                                                       model: str, stream: bool) -> None:
    content, annotations, usage = await ask(search_gw, model, stream, plugins=[{"id": "web"}])
    searched, prices, per_search = NATIVE[model]
    body = sent(sim)
    assert searched(body)
    assert "A web search was conducted" not in str(body)  # the backend's results are not in the prompt
    assert annotations and all(a["type"] == "url_citation" for a in annotations)
    for annotation in annotations:
        citation = annotation["url_citation"]
        assert citation["url"].startswith("https://") and citation["title"]
        assert 0 <= citation["start_index"] <= citation["end_index"] <= len(content)
    assert any(a["url_citation"]["end_index"] > a["url_citation"]["start_index"] for a in annotations)
    extra = usage.model_extra or {}
    assert extra["server_tool_use_details"] == {"web_search_requests": 1}
    assert Decimal(str(extra["cost"])) == pytest.approx(cost(usage, prices, 1, per_search), abs=Decimal("1e-9"))


async def test_claude_citations_span_the_text_they_support(search_gw: Gateway, sim: SimServer) -> None:
    content, annotations, _ = await ask(search_gw, "anthropic/claude-sonnet-4.5", False, plugins=[{"id": "web"}])
    assert len(annotations) == 2  # the simulator cites its first two results on the answer's text block
    first = annotations[0]["url_citation"]
    assert first["url"].startswith("https://site1.example.org/who-won-the-2026-pelican-regatta")
    assert (first["start_index"], first["end_index"]) == (0, len(content))
    assert first["content"].startswith("Page 1")  # Anthropic's `cited_text`


async def test_gemini_segments_become_character_spans(search_gw: Gateway, sim: SimServer) -> None:
    content, annotations, _ = await ask(search_gw, "google/gemini-2.5-flash", False, plugins=[{"id": "web"}])
    spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in annotations]
    half = len(content) // 2
    assert spans == [(0, half), (0, half), (half, len(content))]
    assert annotations[0]["url_citation"]["url"].startswith(
        "https://vertexaisearch.cloud.google.com/grounding-api-redirect/")
    assert annotations[0]["url_citation"]["title"] == "site1.example.org"
    assert annotations[0]["url_citation"]["content"] == content[:half]


async def test_web_search_options_alone_search_natively(search_gw: Gateway, sim: SimServer) -> None:
    options = {"web_search_options": {"user_location": {"type": "approximate", "approximate": {"city": "Oslo"}}}}
    _, annotations, usage = await ask(search_gw, "anthropic/claude-sonnet-4.5", False, **options)
    tool = sent(sim)["tools"][-1]
    assert tool == {"type": "web_search_20250305", "name": "web_search",
                    "user_location": {"type": "approximate", "city": "Oslo"}}
    assert annotations and (usage.model_extra or {})["server_tool_use_details"] == {"web_search_requests": 1}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("model", "plugin"), [("openai/gpt-4o-mini", {"id": "web"}),
                                               ("anthropic/claude-sonnet-4.5", {"id": "web", "engine": "exa"})],
                         ids=["no-native-search", "engine-exa"])
async def test_the_backend_searches_for_other_endpoints_and_engines(search_gw: Gateway, sim: SimServer,
                                                                    model: str, plugin: dict[str, Any],
                                                                    stream: bool) -> None:
    _, annotations, usage = await ask(search_gw, model, stream, plugins=[plugin])
    body = sent(sim)
    assert "web_search_options" not in body and "tools" not in body  # no native search asked for
    assert "A web search was conducted" in str(body["messages"][-1]["content"])
    assert len(annotations) == 5
    assert annotations[0]["url_citation"]["url"].startswith("https://site1.example.org/who-won")
    assert (usage.model_extra or {})["server_tool_use_details"] == {"web_search_requests": 1}


async def test_native_search_needs_no_backend_and_other_endpoints_refuse(start_gateway: GatewayFactory,
                                                                         sim: SimServer) -> None:
    async with start_gateway(env=providers(sim), simulator="off") as search_gw:
        _, annotations, _ = await ask(search_gw, "anthropic/claude-sonnet-4.5", False,
                                      plugins=[{"id": "web", "engine": "native"}])
        assert annotations
        with pytest.raises(openai.BadRequestError) as caught:
            await ask(search_gw, "openai/gpt-4o-mini", False, plugins=[{"id": "web"}])
    assert "needs a web search backend" in str(caught.value)


async def test_the_simulator_refuses_web_search_options_for_a_model_that_cannot_search(sim: SimServer) -> None:
    async with openai.AsyncOpenAI(base_url=f"{sim.url}/v1", api_key="sk", max_retries=0) as c:
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            web_search_options={})
        searched = await c.chat.completions.create(model="gpt-4o-mini-search-preview",
                                                   messages=[{"role": "user", "content": "hi"}])
    citations = searched.choices[0].message.annotations or []
    text = searched.choices[0].message.content or ""
    assert len(citations) == 2
    assert text[citations[0].url_citation.start_index:citations[0].url_citation.end_index].startswith("([site1")


# -- the other inbound APIs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["google/gemini-2.5-flash", "openai/gpt-4o-mini"], ids=["native", "backend"])
async def test_responses_carry_the_citations_on_output_text(search_gw: Gateway, sim: SimServer, model: str) -> None:
    async with client(search_gw) as c:
        whole = await c.responses.create(model=model, input=QUESTION, extra_body={"plugins": [{"id": "web"}]})
        stream = await c.responses.create(model=model, input=QUESTION, stream=True,
                                          extra_body={"plugins": [{"id": "web"}]})
        events = [event async for event in stream]
    text = whole.output_text
    part = whole.output[-1].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text"
    annotations = [a.model_dump() for a in part.annotations]
    assert annotations and all(a["type"] == "url_citation" and a["url"].startswith("https://") for a in annotations)
    assert all(0 <= a["start_index"] <= a["end_index"] <= len(text) for a in annotations)
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert [e.annotation_index for e in added] == list(range(len(annotations)))  # type: ignore[union-attr]
    assert [e.annotation.model_dump() for e in added] == annotations  # type: ignore[union-attr]
    for event in added:
        validate_component(event.model_dump(), "AnnotationAddedEvent")
    done = next(e for e in events if e.type == "response.completed")
    final = done.response.output[-1].content[0]  # type: ignore[union-attr]
    assert [a.model_dump() for a in final.annotations] == annotations  # type: ignore[union-attr]
    delta_at = max(i for i, e in enumerate(events) if e.type == "response.output_text.delta")
    assert all(delta_at < events.index(e) < events.index(done) for e in added)


async def test_messages_text_blocks_carry_citations(search_gw: Gateway, sim: SimServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=search_gw.root + "/api", api_key=search_gw.key,
                                        max_retries=0) as messages:
        ask = {"model": "google/gemini-2.5-flash", "max_tokens": 300,
               "messages": [{"role": "user", "content": QUESTION}], "extra_body": {"plugins": [{"id": "web"}]}}
        whole = await messages.messages.create(**ask)  # type: ignore[arg-type]
        async with messages.messages.stream(**ask) as stream:  # type: ignore[arg-type]
            streamed = await stream.get_final_message()
    texts = [block for block in whole.content if block.type == "text"]
    # Gemini's two segments (the first half cited by two sources, the rest by one): two blocks
    assert len(texts) == 2
    assert [len(block.citations or ()) for block in texts] == [2, 1]
    first = (texts[0].citations or [])[0]
    assert first.type == "web_search_result_location" and first.url.startswith("https://vertexaisearch")
    assert first.cited_text == texts[0].text
    cited = [c.url for block in streamed.content if block.type == "text" for c in block.citations or ()]
    assert cited == [c.url for block in texts for c in block.citations or ()]


@pytest.mark.parametrize("model", list(NATIVE))
async def test_cited_replies_match_openrouters_schema(search_gw: Gateway, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "plugins": [{"id": "web"}]}
    async with aiohttp.ClientSession(headers=search_gw.auth) as http:
        async with http.post(f"{search_gw.url}/chat/completions", json=body) as response:
            whole = await response.json()
        async with http.post(f"{search_gw.url}/chat/completions", json={**body, "stream": True}) as response:
            text = (await response.read()).decode()
    assert whole["choices"][0]["message"]["annotations"]
    validate_response(whole, "/chat/completions", "post", 200)
    chunks = [orjson.loads(event[len("data: "):]) for event in text.split("\n\n") if event.startswith("data: {")]
    assert any(chunk["choices"] and chunk["choices"][0]["delta"].get("annotations") for chunk in chunks)
    for chunk in chunks:
        validate_component(chunk, "ChatStreamChunk")


async def generation(gw: Gateway, gen_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers=gw.auth) as http, \
            http.get(f"{gw.url}/generation", params={"id": gen_id}) as response:
        data: dict[str, Any] = (await response.json())["data"]
    return data


@pytest.mark.parametrize(("model", "engine", "results"), [("openai/gpt-4o-mini", "exa", 5),
                                                          ("anthropic/claude-sonnet-4.5", "native", None)],
                         ids=["backend", "native"])
async def test_generation_names_who_searched(search_gw: Gateway, model: str, engine: str, results: int | None) -> None:
    async with client(search_gw) as c:
        reply = await c.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}],
                                                extra_body={"plugins": [{"id": "web"}]})
    record = await generation(search_gw, reply.id)
    assert (record["web_search_engine"], record["num_search_results"]) == (engine, results)
    validate_response({"data": record}, "/generation", "get", 200)
