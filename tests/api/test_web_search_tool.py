"""Web search asked for as a tool, end to end: the `openai` SDK (chat completions and `/responses`) with
OpenRouter's `openrouter:web_search` server tool or OpenAI's `web_search` shorthands, and the `anthropic` SDK
(`/messages`) with Anthropic's `web_search_20250305` — against the built-in catalog's providers pointed at the
simulator and its Exa-shaped search. The provider searches where the endpoint can, the backend elsewhere; the
reply cites the results, shows the search as each API shows a tool call, counts it in the usage, charges it
at the endpoint's `web_search` price, and `/generation` names who searched."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from crossroads.sim import SimServer
from tests.api.conftest import client, providers
from tests.api.test_web_search import QUESTION, generation, sent
from tests.conftest import Gateway, GatewayFactory
from tests.openapi import validate_component, validate_response

FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
#: (model, tool, who searches, results cited, the endpoint's prices per million tokens and per search)
CASES = [
    ("openai/gpt-4o-mini", {"type": "web_search"}, "exa", 5, ("0.15", "0.60"), "0"),
    ("anthropic/claude-sonnet-4.5", {"type": "openrouter:web_search", "parameters": {"engine": "exa",
                                                                                     "max_results": 3}},
     "exa", 3, ("3", "15"), "0.01"),
    ("anthropic/claude-sonnet-4.5", {"type": "openrouter:web_search"}, "native", None, ("3", "15"), "0.01"),
    ("google/gemini-2.5-flash", {"type": "web_search_preview"}, "native", None, ("0.30", "2.50"), "0.035"),
]
IDS = ["shorthand-backend", "openrouter-engine-exa", "openrouter-native-anthropic", "preview-native-gemini"]


def expected_cost(prompt: int, completion: int, prices: tuple[str, str], per_search: str) -> Decimal:
    per_prompt, per_completion = (Decimal(p) / 1_000_000 for p in prices)
    return prompt * per_prompt + completion * per_completion + Decimal(per_search)


def searched_upstream(sim: SimServer, engine: str) -> None:
    """The model's request searched natively, or carried the backend's results and no search of its own."""
    body = sent(sim)
    text = str(body)
    if engine == "native":
        assert "A web search was conducted" not in text
        assert "web_search" in text or "google_search" in text
    else:
        assert "A web search was conducted" in text
        assert "web_search_options" not in body and "google_search" not in text and "web_search_2025" not in text


def check_citations(text: str, annotations: list[dict[str, Any]], results: int | None) -> None:
    assert annotations and all(a["url"].startswith("https://") for a in annotations)
    assert all(0 <= a["start_index"] <= a["end_index"] <= len(text) for a in annotations)
    if results is not None:
        assert len(annotations) == results
        assert annotations[0]["url"].startswith("https://site1.example.org/who-won")


# -- chat completions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("model", "tool", "engine", "results", "prices", "per_search"), CASES, ids=IDS)
async def test_chat_searches_for_the_tool(search_gw: Gateway, sim: SimServer, model: str, tool: dict[str, Any],
                                          engine: str, results: int | None, prices: tuple[str, str],
                                          per_search: str, stream: bool) -> None:
    ask: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "tools": [tool]}
    async with client(search_gw) as c:
        if stream:
            chunks = [chunk async for chunk in await c.chat.completions.create(**ask, stream=True)]
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            annotations = [a for ch in chunks if ch.choices
                           for a in (ch.choices[0].delta.model_extra or {}).get("annotations") or ()]
            usage, gen_id = chunks[-1].usage, chunks[0].id
        else:
            reply = await c.chat.completions.create(**ask)
            text = reply.choices[0].message.content or ""
            annotations = reply.choices[0].message.model_dump().get("annotations") or []
            usage, gen_id = reply.usage, reply.id
    searched_upstream(sim, engine)
    check_citations(text, [{"url": a["url_citation"]["url"], "start_index": a["url_citation"]["start_index"],
                            "end_index": a["url_citation"]["end_index"]} for a in annotations], results)
    assert usage is not None
    extra = usage.model_extra or {}
    assert extra["server_tool_use_details"] == {"web_search_requests": 1}
    cost = expected_cost(usage.prompt_tokens, usage.completion_tokens, prices, per_search)
    assert Decimal(str(extra["cost"])) == pytest.approx(cost, abs=Decimal("1e-9"))
    record = await generation(search_gw, gen_id)
    assert (record["web_search_engine"], record["num_search_results"]) == (engine, results)
    assert Decimal(str(record["total_cost"])) == pytest.approx(cost, abs=Decimal("1e-9"))


async def test_function_tools_beside_the_search_still_reach_the_model(search_gw: Gateway, sim: SimServer) -> None:
    tools = [FUNCTION, {"type": "openrouter:web_search", "parameters": {"max_total_results": 2}}]
    async with client(search_gw) as c:
        reply = await c.chat.completions.create(model="openai/gpt-4o-mini", tools=tools,  # type: ignore[arg-type]
                                                messages=[{"role": "user", "content": QUESTION}])
    body = sent(sim)
    assert body["tools"] == [FUNCTION]
    assert "A web search was conducted" in str(body["messages"])
    assert len(reply.choices[0].message.model_dump().get("annotations") or ()) == 2
    validate_response(reply.model_dump(exclude_unset=True), "/chat/completions", "post", 200)


async def test_the_tool_without_a_backend_is_refused_where_no_endpoint_searches(start_gateway: GatewayFactory,
                                                                                sim: SimServer) -> None:
    async with start_gateway(env=providers(sim), simulator="off") as search_gw, client(search_gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o-mini", tools=[{"type": "web_search"}],  # type: ignore[list-item]
                                            messages=[{"role": "user", "content": QUESTION}])
        native = await c.chat.completions.create(model="anthropic/claude-sonnet-4.5",
                                                 tools=[{"type": "web_search"}],  # type: ignore[list-item]
                                                 messages=[{"role": "user", "content": QUESTION}])
    assert "the web search tool needs a web search backend" in str(caught.value)
    assert (native.usage.model_extra or {})["server_tool_use_details"] == {"web_search_requests": 1}  # type: ignore[union-attr]


async def test_conflicting_domain_filters_name_the_field(search_gw: Gateway) -> None:
    tool = {"type": "openrouter:web_search", "parameters": {"allowed_domains": ["a.org"], "excluded_domains": ["b"]}}
    async with client(search_gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o-mini", tools=[tool],  # type: ignore[list-item]
                                            messages=[{"role": "user", "content": QUESTION}])
    assert "tools[0].parameters" in str(caught.value)


async def test_the_backend_keeps_to_the_domains_asked_for(search_gw: Gateway, start_gateway: GatewayFactory,
                                                        sim: SimServer) -> None:
    ask: dict[str, Any] = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    allowed = {"type": "openrouter:web_search", "parameters": {"allowed_domains": ["docs.example.com"]}}
    async with client(search_gw) as c:
        reply = await c.chat.completions.create(**ask, tools=[allowed])
    urls = [a["url_citation"]["url"] for a in reply.choices[0].message.model_dump()["annotations"]]
    assert len(urls) == 5 and all(url.startswith("https://docs.example.com/") for url in urls)  # Exa's filter
    env = {**providers(sim), "CROSSROADS_WEB_SEARCH_API": "brave",
           "CROSSROADS_WEB_SEARCH_URL": f"{sim.url}/brave/res/v1", "CROSSROADS_WEB_SEARCH_KEY": "bk"}
    excluded = {"type": "web_search", "excluded_domains": ["site1.example.org"]}
    async with start_gateway(env=env, simulator="off") as brave, client(brave) as c:
        reply = await c.chat.completions.create(**ask, tools=[excluded])
    urls = [a["url_citation"]["url"] for a in reply.choices[0].message.model_dump()["annotations"]]
    assert len(urls) == 4 and not any("site1.example.org" in url for url in urls)  # filtered once received


# -- /responses ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "tool", "engine", "results", "prices", "per_search"),
                         [CASES[0], CASES[2]], ids=["backend", "native"])
async def test_responses_show_the_search_as_a_web_search_call(search_gw: Gateway, sim: SimServer, model: str,
                                                              tool: dict[str, Any], engine: str, results: int | None,
                                                              prices: tuple[str, str], per_search: str) -> None:
    async with client(search_gw) as c:
        whole = await c.responses.create(model=model, input=QUESTION, tools=[tool])  # type: ignore[list-item]
        searched_upstream(sim, engine)
        stream = await c.responses.create(model=model, input=QUESTION, tools=[tool], stream=True)  # type: ignore[list-item]
        events = [event async for event in stream]
    for response in (whole, next(e for e in events if e.type == "response.completed").response):  # type: ignore[union-attr]
        search, message = response.output
        assert search.type == "web_search_call" and search.status == "completed" and search.id.startswith("ws_")
        assert search.action.type == "search" and search.action.query == QUESTION  # type: ignore[union-attr]
        assert message.type == "message"
        part = message.content[0]
        assert part.type == "output_text"
        check_citations(part.text, [a.model_dump() for a in part.annotations or ()], results)  # type: ignore[union-attr]
        assert response.usage is not None
        cost = expected_cost(response.usage.input_tokens, response.usage.output_tokens, prices, per_search)
        assert Decimal(str((response.usage.model_extra or {})["cost"])) == pytest.approx(cost, abs=Decimal("1e-9"))
    kinds = [event.type for event in events]
    search_id = whole.output[0].id.replace(whole.id[4:], events[0].response.id[4:])  # type: ignore[union-attr]
    assert kinds[2:7] == ["response.output_item.added", "response.web_search_call.in_progress",
                          "response.web_search_call.searching", "response.web_search_call.completed",
                          "response.output_item.done"]
    assert [getattr(e, "item_id", search_id) for e in events[3:6]] == [search_id] * 3
    assert events[2].item.type == "web_search_call" and events[2].item.status == "in_progress"  # type: ignore[union-attr]
    validate_component(whole.output[0].model_dump(exclude_unset=True), "OutputItemWebSearchCall")
    for event, schema in zip(events[3:6], ("WebSearchCallInProgressEvent", "WebSearchCallSearchingEvent",
                                          "WebSearchCallCompletedEvent"), strict=True):
        validate_component(event.model_dump(exclude_unset=True), schema)
    assert kinds.index("response.output_item.done") < kinds.index("response.output_text.delta")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    record = await generation(search_gw, whole.id)
    assert (record["web_search_engine"], record["num_search_results"]) == (engine, results)


# -- /messages -------------------------------------------------------------------------------------------------

SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def messages_client(search_gw: Gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=search_gw.root + "/api", api_key=search_gw.key, max_retries=0)


async def messages_reply(search_gw: Gateway, ask: dict[str, Any], stream: bool) -> anthropic.types.Message:
    """The reply to `ask` through the anthropic SDK, whole or assembled from its stream."""
    async with messages_client(search_gw) as c:
        if stream:
            async with c.messages.stream(**ask) as events:
                return await events.get_final_message()
        return await c.messages.create(**ask)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("model", "engine", "results"), [("openai/gpt-4o-mini", "exa", 5),
                                                          ("google/gemini-2.5-flash", "native", None)],
                         ids=["backend", "native"])
async def test_messages_show_anthropics_server_tool_blocks(search_gw: Gateway, sim: SimServer, model: str, engine: str,
                                                           results: int | None, stream: bool) -> None:
    ask: dict[str, Any] = {"model": model, "max_tokens": 300, "tools": [SEARCH],
                           "messages": [{"role": "user", "content": QUESTION}]}
    reply = await messages_reply(search_gw, ask, stream)
    searched_upstream(sim, engine)
    use, result, *texts = reply.content
    assert use.type == "server_tool_use" and use.name == "web_search" and use.id.startswith("srvtoolu_")
    assert use.input == {"query": QUESTION}
    assert result.type == "web_search_tool_result" and result.tool_use_id == use.id
    assert isinstance(result.content, list)
    if results is not None or not stream:  # a provider's results are its citations, known once it answered
        assert result.content and all(r.type == "web_search_result" and r.url.startswith("https://")
                                      for r in result.content)
    if results is not None:
        assert len(result.content) == results
    assert texts and all(block.type == "text" for block in texts)
    cited = [c for block in texts for c in block.citations or ()]  # type: ignore[union-attr]
    assert cited and all(c.type == "web_search_result_location" for c in cited)
    assert reply.usage.server_tool_use is not None and reply.usage.server_tool_use.web_search_requests == 1
    validate_component(use.model_dump(exclude_unset=True), "ORAnthropicServerToolUseBlock")
    validate_component(result.model_dump(exclude_unset=True), "AnthropicWebSearchToolResult")
    validate_component(reply.usage.server_tool_use.model_dump(), "AnthropicServerToolUsage")
    record = await generation(search_gw, reply.id)
    assert (record["web_search_engine"], record["num_search_results"]) == (engine, results)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_messages_to_anthropic_go_as_written(search_gw: Gateway, sim: SimServer, stream: bool) -> None:
    ask: dict[str, Any] = {"model": "anthropic/claude-sonnet-4.5", "max_tokens": 300, "tools": [SEARCH],
                           "messages": [{"role": "user", "content": QUESTION}]}
    reply = await messages_reply(search_gw, ask, stream)
    body = sent(sim)
    assert body["tools"] == [SEARCH]  # the client's own tool, not a translation
    assert "A web search was conducted" not in str(body)
    assert [block.type for block in reply.content][:2] == ["server_tool_use", "web_search_tool_result"]
    assert reply.usage.server_tool_use is not None and reply.usage.server_tool_use.web_search_requests == 1
    record = await generation(search_gw, reply.id)
    cost = expected_cost(record["tokens_prompt"], record["tokens_completion"], ("3", "15"), "0.01")
    assert Decimal(str(record["total_cost"])) == pytest.approx(cost, abs=Decimal("1e-9"))
    assert record["web_search_engine"] == "native"
