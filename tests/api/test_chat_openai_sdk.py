"""End to end through the official `openai` SDK: a real gateway, the real simulator, real sockets."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def client(gw: Gateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=key or gw.key, max_retries=0)


async def test_plain_completion_as_in_the_quickstart(gateway: Gateway) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            extra_headers={"HTTP-Referer": "https://example.org", "X-Title": "Quickstart"},
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "What is the meaning of life?"}],
        )
    completion = raw.parse()
    assert completion.id.startswith("gen-")
    assert raw.headers["x-generation-id"] == completion.id
    assert completion.model == "openai/gpt-4o"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    assert extra["provider"] == "Simulator"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert (usage.model_extra or {})["cost"] > 0
    record = gateway.services.ledger.recent(completion.id)
    assert record is not None
    assert record.http_referer == "https://example.org" and record.app_title == "Quickstart"


async def test_streamed_completion_ends_with_usage_chunk_then_done(gateway: Gateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="openai/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Say hi"}])
        chunks = [chunk async for chunk in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert [ch.choices[0].finish_reason for ch in finish] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks.index(finish[0]) < len(chunks) - 1  # usage comes after the finish_reason chunk
    assert (chunks[-1].usage.model_extra or {})["cost"] > 0
    assert len({ch.id for ch in chunks}) == 1 and chunks[0].id.startswith("gen-")


async def test_tool_call_round_trip(gateway: Gateway) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Use get_weather for Paris"}]
    async with client(gateway) as c:
        first = await c.chat.completions.create(model="openai/gpt-4o", messages=messages,  # type: ignore[arg-type]
                                                tools=[WEATHER_TOOL], tool_choice="required")
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather"
        assert "city" in json.loads(call.function.arguments)
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
        second = await c.chat.completions.create(model="openai/gpt-4o", messages=messages,  # type: ignore[arg-type]
                                                 tools=[WEATHER_TOOL])
    assert "18 degrees and sunny" in (second.choices[0].message.content or "")


async def test_streamed_tool_call_arguments_arrive_incrementally(gateway: Gateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="openai/gpt-4o", stream=True, tools=[WEATHER_TOOL], tool_choice="required",  # type: ignore[list-item]
            messages=[{"role": "user", "content": "weather in Oslo via get_weather"}])
        arguments = ""
        name = None
        finish = None
        async for chunk in stream:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    name = name or (delta.function.name if delta.function else None)
                    arguments += (delta.function.arguments or "") if delta.function else ""
                finish = choice.finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert "city" in json.loads(arguments)


async def test_json_mode(gateway: Gateway) -> None:
    async with client(gateway) as c:
        completion = await c.chat.completions.create(
            model="openai/gpt-4o", response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "Answer in JSON"}])
        schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
                  "additionalProperties": False}
        structured = await c.chat.completions.create(
            model="openai/gpt-4o",
            response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                    "strict": True}},
            messages=[{"role": "user", "content": "What is 6 times 7?"}])
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    assert isinstance(json.loads(structured.choices[0].message.content or "")["answer"], int)


async def test_unknown_model_is_a_400_naming_it(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    assert "nobody/nothing" in caught.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"frequency_penalty": "high"}, "frequency_penalty"),
        ({"top_logprobs": 5}, "top_logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"provider": {"sort": "cheapest"}}, "provider.sort"),
        ({"provider": {"ordr": ["openai"]}}, "provider.ordr"),
    ],
)
async def test_bad_parameters_are_400s_naming_the_field(gateway: Gateway, extra: dict[str, object],
                                                        param: str) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}],
                                            extra_body=extra)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == 400
    assert body["message"].startswith(param)
    assert body["metadata"]["param"] == param


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        ({"plugins": [{"id": "moderation"}]}, "plugins[0].id",
         "the plugin 'moderation' is not supported by this gateway"),
        ({"plugins": [{"id": "web", "enabled": False}, {"id": "no-such-plugin"}]},
         "plugins[1].id", "the plugin 'no-such-plugin' is not supported by this gateway"),
        ({"transforms": ["middle-in"]}, "transforms[0]", "the transform 'middle-in' is not supported by this gateway"),
        ({"plugins": [{"id": "web", "max_results": 0}]}, "plugins[0].max_results",
         "must be between 1 and 25, got 0"),
        ({"plugins": [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]}, "plugins[0].pdf.engine",
         "the engine 'mistral-ocr' is not available on this gateway; use 'pdf-text' or 'native'"),
    ],
)
async def test_plugins_and_transforms_the_gateway_does_not_apply_are_refused(
        gateway: Gateway, extra: dict[str, object], param: str, message: str) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}],
                                            extra_body=extra)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == 400 and body["metadata"]["param"] == param
    assert body["message"] == f"{param}: {message}"


async def test_a_disabled_plugin_or_no_transform_asks_for_nothing(gateway: Gateway) -> None:
    async with client(gateway) as c:
        completion = await c.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}],
            extra_body={"plugins": [{"id": "web", "enabled": False}, {"id": "moderation", "enabled": False}],
                        "transforms": []})
    assert completion.choices[0].message.content


async def test_bad_message_names_its_path(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(
                model="openai/gpt-4o",
                messages=[{"role": "user", "content": "x"}, {"role": "wizard", "content": "y"}])  # type: ignore[misc,list-item]
    assert "messages[1].role" in caught.value.message


async def test_wrong_key_is_401(gateway: Gateway) -> None:
    async with client(gateway, key="sk-cr-v1-" + "0" * 64) as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])


async def test_key_over_its_limit_gets_402_and_nothing_goes_upstream(gateway: Gateway) -> None:
    poor = await gateway.new_key(limit_nanos=1000)  # $0.000001
    simulator = gateway.services.simulator
    assert simulator is not None
    before = simulator.stats["requests"]
    async with client(gateway, key=poor) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 402
    assert simulator.stats["requests"] == before


async def test_body_over_the_cap_is_413(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_MAX_BODY_BYTES": "2048"}) as gw, client(gw) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o",
                                            messages=[{"role": "user", "content": "x" * 5000}])
    assert caught.value.status_code == 413


async def test_rate_limited_key_gets_429_with_headers(gateway: Gateway) -> None:
    limited = await gateway.new_key(rate_limit_requests=1, rate_limit_interval=60)
    async with client(gateway, key=limited) as c:
        await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit"] == "1" and headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize(("directive", "status", "error"), [
    ("status=500", 503, openai.InternalServerError),
    ("status=503", 503, openai.InternalServerError),
    ("status=429;retry_after=7", 429, openai.RateLimitError),
    ("malformed", 503, openai.InternalServerError),
    ("status=400", 400, openai.BadRequestError),
    ("status=401", 502, openai.InternalServerError),
])
async def test_upstream_failures_become_openrouter_errors(start_gateway: GatewayFactory, sim: object,
                                                         directive: str, status: int,
                                                         error: type[Exception]) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [  # type: ignore[attr-defined]
        {"provider": "alpha", "upstream_model": f"m#{directive}"}]})
    async with start_gateway(env=provider_keys("alpha"), catalog=catalog) as gw, client(gw) as c:
        with pytest.raises(error) as caught:  # type: ignore[call-overload]
            await c.chat.completions.create(model="test/model", messages=[{"role": "user", "content": "x"}])
    exc = caught.value
    assert exc.status_code == status
    body = exc.body
    assert body["code"] == status
    assert body["metadata"]["previous_errors"][0]["provider"] == "Alpha"
    if status == 429:
        assert exc.response.headers["retry-after"] == "7"


async def test_upstream_timeout_is_reported(start_gateway: GatewayFactory, sim: object) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [  # type: ignore[attr-defined]
        {"provider": "alpha", "upstream_model": "m#hang"}]})
    env = {**provider_keys("alpha"), "CROSSROADS_FIRST_BYTE_TIMEOUT": "0.5"}
    async with start_gateway(env=env, catalog=catalog) as gw, client(gw) as c:
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(model="test/model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["metadata"]["previous_errors"][0]["status"] == 504  # type: ignore[index]


async def test_drop_mid_stream_becomes_in_band_error(start_gateway: GatewayFactory, sim: object) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [  # type: ignore[attr-defined]
        {"provider": "alpha", "upstream_model": "m#drop_after=3;tokens=20"},
        {"provider": "beta", "upstream_model": "m", "prompt": "5"}]})
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        stream = await c.chat.completions.create(model="test/model", stream=True,
                                                 extra_body={"provider": {"order": ["alpha"]}},
                                                 messages=[{"role": "user", "content": "x"}])
        seen: list[object] = []

        async def consume() -> None:
            async for chunk in stream:
                seen.append(chunk)

        with pytest.raises(openai.APIError) as caught:
            await consume()
    assert seen, "content arrived before the failure"
    assert all((ch.model_extra or {})["provider"] == "Alpha" for ch in seen)  # type: ignore[attr-defined]  # no switch after the first byte
    assert "mid-reply" in caught.value.message or "closed" in caught.value.message


async def test_client_disconnect_cancels_the_upstream(start_gateway: GatewayFactory, sim: object) -> None:
    catalog = upstream_catalog(sim.url, {"test/model": [  # type: ignore[attr-defined]
        {"provider": "alpha", "upstream_model": "m#tokens=400;tps=40"}]})
    async with start_gateway(env=provider_keys("alpha"), catalog=catalog) as gw:
        async with client(gw) as c:
            stream = await c.chat.completions.create(model="test/model", stream=True,
                                                     messages=[{"role": "user", "content": "x"}])
            async for _ in stream:
                break
            await stream.close()
        for _ in range(50):
            if sim.stats["cancelled"] == 1:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.02)
        assert sim.stats["cancelled"] == 1  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        records = [r for r in gw.services.ledger.recent_records() if r.cancelled]
        assert len(records) == 1 and records[0].status == 499


async def _stream_with_keepalive(start_gateway: GatewayFactory, sim_url: str, directive: str) -> tuple[int, str]:
    """A raw streamed request (comments included) to an upstream behaving as `directive`, with keep-alive
    comments every 0.2 s: the status and the whole body."""
    import aiohttp

    catalog = upstream_catalog(sim_url, {"test/model": [{"provider": "alpha", "upstream_model": f"m#{directive}"}]})
    env = {**provider_keys("alpha"), "CROSSROADS_STREAM_KEEPALIVE": "0.2"}
    request = {"model": "test/model", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with start_gateway(env=env, catalog=catalog) as gw, aiohttp.ClientSession() as http, \
            http.post(f"{gw.url}/chat/completions", headers=gw.auth, json=request) as resp:
        return resp.status, (await resp.read()).decode()


async def test_keepalive_comments_while_upstream_is_silent(start_gateway: GatewayFactory, sim: object) -> None:
    _, body = await _stream_with_keepalive(start_gateway, sim.url, "latency=700")  # type: ignore[attr-defined]
    assert body.startswith(": OPENROUTER PROCESSING\n\n")
    assert body.count(": OPENROUTER PROCESSING") >= 2
    assert body.rstrip().endswith("data: [DONE]")


async def test_a_body_that_never_finishes_is_408(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_BODY_TIMEOUT": "0.3"}) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(gw.root.rsplit(":", 1)[1]))
        writer.write(f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4.5", "google/gemini-2.5-flash",
                                   "deepseek/deepseek-r1-0528"])
async def test_the_built_in_simulator_serves_every_wire_format(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        reply = await c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
        stream = await c.chat.completions.create(model=model, stream=True,
                                                 messages=[{"role": "user", "content": "Hello"}])
        chunks = [chunk async for chunk in stream]
    assert reply.choices[0].message.content and (reply.model_extra or {})["provider"] == "Simulator"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[-1].usage is not None


async def test_failure_after_keepalive_comments_is_an_in_band_error(start_gateway: GatewayFactory,
                                                                    sim: object) -> None:
    status, body = await _stream_with_keepalive(start_gateway, sim.url,  # type: ignore[attr-defined]
                                                "latency=600;status=503")
    assert status == 200  # committed by the keep-alive comments before the upstream failed
    events = [e for e in body.split("\n\n") if e]
    assert events[0] == ": OPENROUTER PROCESSING"
    error = json.loads(events[-2][len("data: "):])
    assert error["error"]["code"] == 503 and error["choices"][0]["finish_reason"] == "error"
    assert events[-1] == "data: [DONE]"
