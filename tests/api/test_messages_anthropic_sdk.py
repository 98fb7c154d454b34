"""`/api/v1/messages` end to end through the official `anthropic` SDK: the gateway serves an Anthropic-format
endpoint (the client's body sent as written), an OpenAI-format and a Gemini-format one (translated both
ways), all answered by the simulator, which checks every upstream request against its wire format.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory
from tests.openapi import validate_response

CLAUDE, GPT, GEMINI = "anthropic/claude-sonnet-4.5", "openai/gpt-4o", "google/gemini-2.5-flash"
UPSTREAM = {CLAUDE: "claude-sonnet-4-5-20250929", GPT: "gpt-4o", GEMINI: "gemini-2.5-flash"}
MODELS = [CLAUDE, GPT, GEMINI]
CACHE = {"type": "ephemeral"}
WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
#: A 1×1 transparent PNG.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "000154a24f5d0000000049454e44ae426082")).decode()


@pytest.fixture
async def gw(start_gateway: GatewayFactory, sim: SimServer) -> AsyncIterator[Gateway]:
    env = {"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk-openai", "GEMINI_API_KEY": "gemini-key",
           "CROSSROADS_PROVIDER_ANTHROPIC_BASE_URL": sim.url, "CROSSROADS_PROVIDER_OPENAI_BASE_URL": sim.url + "/v1",
           "CROSSROADS_PROVIDER_GOOGLE_AI_STUDIO_BASE_URL": sim.url}
    async with start_gateway(env=env, simulator="off") as gateway:
        yield gateway


def client(gw: Gateway, **kwargs: Any) -> anthropic.AsyncAnthropic:
    options: dict[str, Any] = {"api_key": gw.key, **kwargs}
    return anthropic.AsyncAnthropic(base_url=gw.root + "/api", max_retries=0, **options)


async def ask(c: anthropic.AsyncAnthropic, stream: bool, **kwargs: Any) -> anthropic.types.Message:
    if not stream:
        return await c.messages.create(**kwargs)
    async with c.messages.stream(**kwargs) as events:
        async for _ in events:
            pass
        return await events.get_final_message()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_text_reply(gw: Gateway, model: str, stream: bool) -> None:
    async with client(gw) as c:
        message = await ask(c, stream, model=model, max_tokens=200, system="Be brief.",
                            messages=[{"role": "user", "content": "Say hello."}])
    assert message.type == "message" and message.role == "assistant" and message.model == model
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.id.startswith("gen-")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_tool_round_trip(gw: Gateway, model: str, stream: bool) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Use get_weather for Oslo."}]
    async with client(gw) as c:
        first = await ask(c, stream, model=model, max_tokens=300, tools=[WEATHER], messages=messages)
        assert first.stop_reason == "tool_use"
        calls = [block for block in first.content if block.type == "tool_use"]
        assert len(calls) == 1 and calls[0].name == "get_weather" and isinstance(calls[0].input, dict)
        messages += [{"role": "assistant", "content": [block.model_dump() for block in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id,
                                                   "content": "Sunny, 21 degrees"}]}]
        second = await ask(c, stream, model=model, max_tokens=300, tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_signatures_come_back_unchanged(gw: Gateway, sim: SimServer, stream: bool) -> None:
    """The simulator signs its thinking blocks and refuses altered ones, as Anthropic does: the second turn
    passes only if the block the client got is the block the upstream sent."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Use get_weather for Lima."}]
    async with client(gw) as c:
        first = await ask(c, stream, model=CLAUDE, max_tokens=3000, thinking=thinking, tools=[WEATHER],
                          messages=messages)
        kinds = [block.type for block in first.content]
        assert kinds[0] == "thinking" and "tool_use" in kinds
        assert first.content[0].signature  # type: ignore[union-attr]
        call = next(block for block in first.content if block.type == "tool_use")
        assistant = [block.model_dump(exclude_none=True) for block in first.content]
        for block in assistant:
            if block["type"] == "text":
                block.pop("citations", None)
        messages += [{"role": "assistant", "content": assistant},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                   "content": "Cloudy"}]}]
        second = await ask(c, stream, model=CLAUDE, max_tokens=3000, thinking=thinking, tools=[WEATHER],
                           messages=messages)
    assert second.stop_reason == "end_turn"
    sent = sim.requests[-1].body
    assert sent["messages"][1]["content"][0] == assistant[0]
    assert sent["thinking"] == thinking


@pytest.mark.parametrize("model", MODELS)
async def test_image_input(gw: Gateway, sim: SimServer, model: str) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    async with client(gw) as c:
        message = await c.messages.create(model=model, max_tokens=100, messages=[
            {"role": "user", "content": [image, {"type": "text", "text": "What is in this picture?"}]}])
    assert message.content
    sent = sim.requests[-1].body
    if model == CLAUDE:
        assert sent["messages"][0]["content"][0] == image
    elif model == GPT:
        assert sent["messages"][0]["content"][0]["image_url"]["url"] == f"data:image/png;base64,{PIXEL}"
    else:
        assert sent["contents"][0]["parts"][0]["inlineData"] == {"mimeType": "image/png", "data": PIXEL}


async def test_cache_control_reaches_the_provider_where_the_client_put_it(gw: Gateway, sim: SimServer) -> None:
    sim.set_behaviour(UPSTREAM[CLAUDE], "cached=5")
    system = [{"type": "text", "text": "You answer questions about geography.", "cache_control": {"type": "ephemeral"}}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use get_weather for Quito."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Quito"}}]},
        # A breakpoint on a tool result: no Chat Completions form has a place for it.
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Rain",
                                      "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
    ]
    async with client(gw) as c:
        message = await c.messages.create(model=CLAUDE, max_tokens=100, system=system,  # type: ignore[arg-type]
                                          tools=[WEATHER], messages=messages)  # type: ignore[arg-type]
    sent = sim.requests[-1].body
    assert sent["system"] == system
    assert sent["messages"] == messages
    assert sent["model"] == UPSTREAM[CLAUDE]
    assert message.usage.cache_read_input_tokens == 5
    assert message.usage.cache_creation_input_tokens


async def test_beta_headers_reach_only_messages_endpoints(gw: Gateway, sim: SimServer) -> None:
    beta = {"anthropic-beta": "interleaved-thinking-2025-05-14,some-future-beta"}
    async with client(gw, default_headers=beta) as c:
        for model in MODELS:
            await c.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
            headers = sim.requests[-1].headers
            if model == CLAUDE:
                assert headers["anthropic-beta"] == beta["anthropic-beta"]
            else:
                assert "anthropic-beta" not in headers


async def test_count_tokens(gw: Gateway, sim: SimServer) -> None:
    """Exact from an endpoint that can count (the simulator counts as it bills its replies), an estimate
    elsewhere."""
    system = [{"type": "text", "text": "Be brief.", "cache_control": CACHE}]
    messages = [{"role": "user", "content": "hello " * 200}]
    async with client(gw, default_headers={"anthropic-beta": "token-counting-2024-11-01"}) as c:
        exact = await c.messages.count_tokens(model=CLAUDE, system=system, tools=[WEATHER],  # type: ignore[arg-type,list-item]
                                              messages=messages)  # type: ignore[arg-type]
        sent = sim.requests[-1]
        assert sent.path == "/v1/messages/count_tokens"
        assert sent.body == {"model": UPSTREAM[CLAUDE], "system": system, "tools": [WEATHER], "messages": messages}
        assert sent.headers["anthropic-beta"] == "token-counting-2024-11-01"
        billed = await c.messages.create(model=CLAUDE, max_tokens=20, system=system,  # type: ignore[arg-type]
                                         tools=[WEATHER], messages=messages)  # type: ignore[arg-type,list-item]
        usage = billed.usage
        assert exact.input_tokens == (usage.input_tokens + (usage.cache_read_input_tokens or 0)
                                      + (usage.cache_creation_input_tokens or 0))
        short = await c.messages.count_tokens(model=GPT, messages=[{"role": "user", "content": "hi"}])
        long = await c.messages.count_tokens(model=GPT, system="Be brief.", tools=[WEATHER],  # type: ignore[list-item]
                                             messages=messages)  # type: ignore[arg-type]
        assert sim.requests[-1].path == "/v1/messages"  # the estimate asks no provider
    assert 0 < short.input_tokens < long.input_tokens


async def test_auth_token_and_api_key(gw: Gateway) -> None:
    hello = {"model": GPT, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    async with anthropic.AsyncAnthropic(base_url=gw.root + "/api", auth_token=gw.key, max_retries=0) as c:
        assert (await c.messages.create(**hello)).content  # type: ignore[arg-type]
    async with client(gw) as c:
        assert (await c.messages.create(**hello)).content  # type: ignore[arg-type]
    async with client(gw, api_key="sk-or-not-a-key") as c:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await c.messages.create(**hello)  # type: ignore[arg-type]
    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                            "message": "User not found."}, "request_id": None}


async def test_bad_request(gw: Gateway) -> None:
    async with client(gw) as c:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.create(model=CLAUDE, max_tokens=20, extra_body={"temperature": 1.5},
                                    messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "temperature" in caught.value.message
    # Anthropic's error responses carry `request_id`, and OpenRouter's spec requires it.
    validate_response(caught.value.body, "/messages", "post", 400)


async def test_server_tools_need_a_messages_endpoint(gw: Gateway) -> None:
    code = {"type": "code_execution_20250825", "name": "code_execution"}
    async with client(gw) as c:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.create(model=GPT, max_tokens=20, tools=[code],  # type: ignore[list-item]
                                    messages=[{"role": "user", "content": "hi"}])
    assert "server tools" in caught.value.message


async def test_management_key_is_refused(gw: Gateway) -> None:
    async with client(gw, api_key=gw.admin["Authorization"].removeprefix("Bearer ")) as c:
        with pytest.raises(anthropic.PermissionDeniedError):
            await c.messages.create(model=CLAUDE, max_tokens=20, messages=[{"role": "user", "content": "hi"}])


async def test_spend_limit_is_a_402_billing_error(gw: Gateway) -> None:
    key = await gw.new_key(limit_nanos=1)
    async with client(gw, api_key=key) as c:
        with pytest.raises(anthropic.PaymentRequiredError) as caught:
            await c.messages.create(model=CLAUDE, max_tokens=2000, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_upstream_rate_limit(gw: Gateway, sim: SimServer, model: str, stream: bool) -> None:
    sim.set_behaviour(UPSTREAM[model], "status=429;retry_after=3")
    async with client(gw) as c:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await ask(c, stream, model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("model", MODELS)
async def test_failure_after_the_stream_began_is_an_error_event(gw: Gateway, sim: SimServer, model: str) -> None:
    sim.set_behaviour(UPSTREAM[model], "error_after=2")
    async with client(gw) as c:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await ask(c, True, model=model, max_tokens=200, messages=[{"role": "user", "content": "Tell a story."}])
    assert caught.value.body["type"] == "error"  # type: ignore[index]


async def generation(gw: Gateway, generation_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers=gw.auth) as http, \
            http.get(f"{gw.url}/generation", params={"id": generation_id}) as response:
        assert response.status == 200
        data: dict[str, Any] = (await response.json())["data"]
        return data


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_is_one_generation_with_its_app(gw: Gateway, stream: bool) -> None:
    agent = {"User-Agent": "claude-cli/2.1.332 (external, cli)"}
    async with client(gw, default_headers=agent) as c:
        plain = await ask(c, stream, model=GPT, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        titled = await ask(c, stream, model=GPT, max_tokens=50, messages=[{"role": "user", "content": "hi"}],
                           extra_headers={"X-Title": "My Tool", "HTTP-Referer": "https://example.org"})
    record = await generation(gw, plain.id)
    assert record["app_title"] == "Claude Code"
    assert record["user_agent"] == agent["User-Agent"]
    assert record["model"] == GPT and record["streamed"] is stream
    assert record["tokens_completion"] == plain.usage.output_tokens
    record = await generation(gw, titled.id)
    assert record["app_title"] == "My Tool" and record["http_referer"] == "https://example.org"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_messages_endpoint_reply_comes_back_as_it_was(gw: Gateway, stream: bool) -> None:
    """What only the Messages API has a place for (the stop sequence that matched) survives the gateway."""
    async with client(gw) as c:
        message = await ask(c, stream, model=CLAUDE, max_tokens=200, stop_sequences=["e"],
                            messages=[{"role": "user", "content": "Say something."}])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "e")
    assert message.model == CLAUDE and message.id.startswith("gen-")


async def test_ping_while_the_upstream_is_silent(start_gateway: GatewayFactory, sim: SimServer) -> None:
    """Keep-alives are Anthropic `ping` events, which the SDK skips; the stream that follows is whole."""
    env = {"OPENAI_API_KEY": "sk-openai", "CROSSROADS_PROVIDER_OPENAI_BASE_URL": sim.url + "/v1",
           "CROSSROADS_STREAM_KEEPALIVE": "0.2"}
    sim.set_behaviour(UPSTREAM[GPT], "ttft=700")
    request = {"model": GPT, "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with start_gateway(env=env, simulator="off") as gw:
        async with aiohttp.ClientSession() as http, \
                http.post(f"{gw.url}/messages", headers={"x-api-key": gw.key}, json=request) as response:
            body = (await response.read()).decode()
        async with client(gw) as c:
            message = await ask(c, True, **{k: v for k, v in request.items() if k != "stream"})
    assert body.startswith('event: ping\ndata: {"type":"ping"}\n\nevent: ping\n')
    assert "event: message_start\n" in body and body.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert message.content and message.stop_reason == "end_turn"
