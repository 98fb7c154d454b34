"""End to end with an Anthropic-served model: an unchanged `openai` SDK client → Crossroads (the built-in
catalog's `anthropic` provider, pointed at the simulator) → the Anthropic Messages adapter → the simulator
speaking Anthropic's wire format, and back.

Every upstream request is checked against what Anthropic's API reference specifies ("Messages" → "Create a
Message"; the "Tool use", "Extended thinking", "Structured outputs" and "Prompt caching" guides).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import jsonschema
import openai
import orjson
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory
from tests.openapi import validate_component, validate_response

MODEL = "anthropic/claude-sonnet-4.5"
UPSTREAM = "claude-sonnet-4-5-20250929"
KEY = "sk-ant-e2e-secret"
PRICES = {"prompt": Decimal("0.000003"), "completion": Decimal("0.000015"), "read": Decimal("0.0000003"),
          "write": Decimal("0.00000375")}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ANTHROPIC_TOOLS = [{"name": t["function"]["name"], "description": t["function"]["description"],  # type: ignore[index]
                    "input_schema": t["function"]["parameters"]} for t in (WEATHER, TIME)]  # type: ignore[index]


@pytest.fixture
async def gw(start_gateway: GatewayFactory, sim: SimServer) -> AsyncIterator[Gateway]:
    env = {"ANTHROPIC_API_KEY": KEY, "CROSSROADS_PROVIDER_ANTHROPIC_BASE_URL": sim.url}
    async with start_gateway(env=env, simulator="off") as gateway:
        yield gateway


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


def upstream(sim: SimServer) -> dict[str, Any]:
    """The last request Anthropic received, after checking its URL and headers."""
    recorded = sim.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["x-api-key"] == KEY
    assert recorded.headers["anthropic-version"] == "2023-06-01"
    assert recorded.headers["content-type"] == "application/json"
    assert "authorization" not in recorded.headers
    body: dict[str, Any] = recorded.body
    return body


async def ask(c: openai.AsyncOpenAI, stream: bool, model: str = MODEL, **kwargs: Any) -> dict[str, Any]:
    """One turn as a plain `message` dict (tool calls and reasoning included), streamed or not, plus the
    finish reason and usage."""
    if not stream:
        reply = await c.chat.completions.create(model=model, **kwargs)
        choice = reply.choices[0]
        message = choice.message.model_dump(exclude_none=True)
        return {"message": message, "finish": choice.finish_reason, "usage": reply.usage, "provider":
                (reply.model_extra or {})["provider"]}
    chunks = [chunk async for chunk in await c.chat.completions.create(model=model, stream=True, **kwargs)]
    assert chunks[0].choices[0].delta.role == "assistant"
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    details: dict[int, dict[str, Any]] = {}
    finishes = []
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            content += delta.content or ""
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, {"id": None, "type": "function",
                                                      "function": {"name": None, "arguments": ""}})
                call["id"] = piece.id or call["id"]
                if piece.function is not None:
                    call["function"]["name"] = piece.function.name or call["function"]["name"]
                    call["function"]["arguments"] += piece.function.arguments or ""
            for detail in (delta.model_extra or {}).get("reasoning_details") or ():
                merged = details.setdefault(detail["index"], {**detail, "text": ""})
                merged["text"] += detail.get("text") or ""
                merged["signature"] = detail.get("signature") or merged.get("signature")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert len(finishes) == 1
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    if details:
        message["reasoning_details"] = [details[index] for index in sorted(details)]
        message["reasoning"] = "".join(d["text"] for d in message["reasoning_details"])
    return {"message": message, "finish": finishes[0], "usage": chunks[-1].usage,
            "provider": (chunks[-1].model_extra or {})["provider"]}


def assert_charged(usage: Any) -> None:
    """The cost the client sees is Anthropic's prices applied to the usage the adapter normalised."""
    details = usage.prompt_tokens_details
    cached = details.cached_tokens or 0
    written = details.cache_write_tokens or 0
    expected = ((usage.prompt_tokens - cached - written) * PRICES["prompt"] + cached * PRICES["read"]
                + written * PRICES["write"] + usage.completion_tokens * PRICES["completion"])
    assert Decimal(str((usage.model_extra or {})["cost"])) == expected


@pytest.mark.parametrize("stream", [False, True])
async def test_multi_turn_tool_conversation(gw: Gateway, sim: SimServer, stream: bool) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "What is the weather in Paris? Use get_weather."},
    ]
    options: dict[str, Any] = {"tools": [WEATHER, TIME], "temperature": 0.2, "stop": ["###"], "user": "user-7",
                               "max_tokens": 800}
    async with client(gw) as c:
        # Turn 1: a tool call.
        turn = await ask(c, stream, messages=messages, **options)
        assert turn["finish"] == "tool_calls" and turn["provider"] == "Anthropic"
        call = turn["message"]["tool_calls"][0]
        assert call["id"].startswith("toolu_") and call["function"]["name"] == "get_weather"
        arguments = json.loads(call["function"]["arguments"])
        sent = upstream(sim)
        assert sent == {
            "model": UPSTREAM,
            "system": "You are a weather assistant.",
            "messages": [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}],
            "tools": ANTHROPIC_TOOLS,
            "temperature": 0.2,
            "stop_sequences": ["###"],
            "metadata": {"user_id": "user-7"},
            "max_tokens": 800,
            **({"stream": True} if stream else {}),
        }
        assert_charged(turn["usage"])

        # Turn 2: the tool's result goes back under the same id and is answered.
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 24 degrees"})
        turn = await ask(c, stream, messages=messages, **options)
        assert turn["finish"] == "stop"
        assert turn["message"]["content"] == "Tool result: Sunny, 24 degrees"
        assert upstream(sim)["messages"][1:] == [
            {"role": "assistant", "content": [{"type": "tool_use", "id": call["id"], "name": "get_weather",
                                               "input": arguments}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                          "content": "Sunny, 24 degrees"}]},
        ]

        # Turn 3: two tools called in parallel, both results in one user turn.
        messages.append({"role": "assistant", "content": turn["message"]["content"]})
        messages.append({"role": "user", "content": "And Rome? Use get_weather and get_time."})
        turn = await ask(c, stream, messages=messages, **options)
        assert turn["finish"] == "tool_calls"
        calls = turn["message"]["tool_calls"]
        assert [call["function"]["name"] for call in calls] == ["get_weather", "get_time"]
        assert len({call["id"] for call in calls}) == 2
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "Rain"})
        messages.append({"role": "tool", "tool_call_id": calls[1]["id"], "content": "18:05"})
        turn = await ask(c, stream, messages=messages, **options)
        assert turn["finish"] == "stop" and turn["message"]["content"] == "Tool result: Rain | 18:05"
        sent = upstream(sim)
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user", "assistant", "user",
                                                         "assistant", "user"]
        assert sent["messages"][3:] == [
            {"role": "assistant", "content": "Tool result: Sunny, 24 degrees"},
            {"role": "user", "content": "And Rome? Use get_weather and get_time."},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": calls[0]["id"], "name": "get_weather",
                 "input": json.loads(calls[0]["function"]["arguments"])},
                {"type": "tool_use", "id": calls[1]["id"], "name": "get_time",
                 "input": json.loads(calls[1]["function"]["arguments"])}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": calls[0]["id"], "content": "Rain"},
                {"type": "tool_result", "tool_use_id": calls[1]["id"], "content": "18:05"}]},
        ]
        assert_charged(turn["usage"])


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_through_a_tool_loop(gw: Gateway, sim: SimServer, stream: bool) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Use get_weather for Oslo, then advise me."}]
    options: dict[str, Any] = {"tools": [WEATHER], "temperature": 0.7,
                               "extra_body": {"reasoning": {"effort": "high"}}}
    async with client(gw) as c:
        turn = await ask(c, stream, messages=messages, **options)
        sent = upstream(sim)
        # 0.8 × the endpoint's 64000-token cap; sampling parameters are not allowed with thinking.
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 51200}
        assert sent["max_tokens"] == 64000 and "temperature" not in sent
        message = turn["message"]
        assert turn["finish"] == "tool_calls" and message["reasoning"]
        (detail,) = message["reasoning_details"]
        assert detail["type"] == "reasoning.text" and detail["format"] == "anthropic-claude-v1"
        assert detail["text"] == message["reasoning"] and detail["signature"]
        usage = turn["usage"]
        assert 0 < usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens
        assert_charged(usage)

        # The signed thinking goes back first in the assistant turn, so thinking stays on in the loop.
        call = message["tool_calls"][0]
        messages.append({"role": "assistant", "content": None, "tool_calls": [call],
                         "reasoning_details": message["reasoning_details"]})
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "Snow"})
        turn = await ask(c, stream, messages=messages, **options)
        assert turn["message"]["content"] == "Tool result: Snow" and turn["message"]["reasoning"]
        sent = upstream(sim)
        assert sent["messages"][1]["content"][0] == {"type": "thinking", "thinking": detail["text"],
                                                     "signature": detail["signature"]}
        assert "thinking" in sent


CITY = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"], "additionalProperties": False}


@pytest.mark.parametrize("stream", [False, True])
async def test_structured_output_natively_where_the_model_has_it(gw: Gateway, sim: SimServer, stream: bool) -> None:
    async with client(gw) as c:
        turn = await ask(c, stream, messages=[{"role": "user", "content": "Largest city in Norway?"}],
                         response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}})
    assert turn["finish"] == "stop"
    jsonschema.validate(json.loads(turn["message"]["content"]), CITY)
    sent = upstream(sim)
    assert sent["output_config"]["format"] == {"type": "json_schema", "schema": CITY}
    assert "tools" not in sent


@pytest.mark.parametrize("stream", [False, True])
async def test_structured_output_through_a_forced_tool(gw: Gateway, sim: SimServer, stream: bool) -> None:
    schema = CITY
    async with client(gw) as c:  # Claude Sonnet 4 has no native structured outputs
        turn = await ask(c, stream, model="anthropic/claude-sonnet-4",
                         messages=[{"role": "user", "content": "Largest city in Norway?"}],
                         response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert turn["finish"] == "stop" and "tool_calls" not in turn["message"]
    jsonschema.validate(json.loads(turn["message"]["content"]), schema)
    sent = upstream(sim)
    assert sent["tools"] == [{"name": "json_response", "description": sent["tools"][0]["description"],
                              "input_schema": schema}]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}


async def test_prompt_caching_is_reported_and_priced(gw: Gateway, sim: SimServer) -> None:
    sim.set_behaviour(UPSTREAM, "cached=5")
    system = [{"type": "text", "text": "You answer questions about geography, briefly and precisely.",
               "cache_control": {"type": "ephemeral"}}]
    async with client(gw) as c:
        reply = await c.chat.completions.create(model=MODEL, messages=[  # type: ignore[misc]
            {"role": "system", "content": system}, {"role": "user", "content": "Capital of Peru?"}])
    assert upstream(sim)["system"] == system
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5
    written = usage.prompt_tokens_details.cache_write_tokens
    assert written is not None and written > 0
    assert usage.prompt_tokens > 5 + written  # the total prompt, cached parts included
    assert_charged(usage)


async def test_overloaded_anthropic_is_a_503(gw: Gateway, sim: SimServer) -> None:
    sim.set_behaviour(UPSTREAM, "status=529;retry_after=2")
    async with client(gw) as c:
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503 and caught.value.response.headers["retry-after"] == "2"
    error: Any = caught.value.body
    assert error["metadata"]["error_type"] == "provider_overloaded"
    assert error["metadata"]["raw"] == {"type": "overloaded_error", "message": "Overloaded"}


async def test_responses_match_openrouters_schema(gw: Gateway) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Use get_weather for Lima"}],
            "tools": [WEATHER], "reasoning": {"effort": "low"}}
    async with aiohttp.ClientSession(headers=gw.auth) as http:
        async with http.post(f"{gw.url}/chat/completions", json=body) as response:
            assert response.status == 200
            validate_response(await response.json(), "/chat/completions", "post", 200)
        async with http.post(f"{gw.url}/chat/completions", json={**body, "stream": True}) as response:
            text = (await response.read()).decode()
    events = [event for event in text.split("\n\n") if event.startswith("data: {")]
    assert events and text.rstrip().endswith("data: [DONE]")
    for event in events:
        validate_component(orjson.loads(event[len("data: "):]), "ChatStreamChunk")


async def test_anthropic_beta_header_is_passed_through(gw: Gateway, sim: SimServer) -> None:
    async with client(gw) as c:
        await c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                        extra_headers={"x-anthropic-beta": "interleaved-thinking-2025-05-14"})
    assert sim.requests[-1].headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
