"""Anthropic Messages fidelity: every reply, stream and error must parse with the official `anthropic` SDK, and
requests the real API refuses are refused the same way."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import jsonschema
import orjson
import pytest
from anthropic.types import Message

from crossroads.sim import SimServer
from crossroads.sim.anthropic_messages import count_prompt_tokens, sign_thinking
from crossroads.sim.reply import count_tokens

MODEL = "claude-sim"  # not a real model id: the SDK warns about deprecated ones
USER = [{"role": "user", "content": "Tell me something about rivers."}]
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}},
                                             "required": ["zone"]}}
THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture
async def claude(sim: SimServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="sk-ant-test", max_retries=0, timeout=10)
    yield client
    await client.close()


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "messages": USER, **fields}


async def post(http: aiohttp.ClientSession, payload: Any, headers: dict[str, str] | None = None) \
        -> tuple[int, dict[str, str], bytes]:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    async with http.post("/v1/messages", data=data, headers=HEADERS if headers is None else headers) as response:
        return response.status, dict(response.headers), await response.read()


def blocks(message: Message) -> list[dict[str, Any]]:
    """Content blocks as plain data (the stream helper adds `parsed_output` to text blocks)."""
    return [{k: v for k, v in block.model_dump().items() if k != "parsed_output"} for block in message.content]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) of an SSE body, checking each event is exactly `event: X\\ndata: {...}\\n\\n`."""
    assert raw.endswith(b"\n\n")
    out = []
    for event in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = event.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), event
        payload = orjson.loads(data_line[len("data: "):])
        assert payload["type"] == name_line[len("event: "):]
        out.append((payload["type"], payload))
    return out


# -- replies -------------------------------------------------------------------------------------------------


async def test_plain_message(claude: anthropic.AsyncAnthropic) -> None:
    raw = await claude.messages.with_raw_response.create(model=MODEL, max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    message = await raw.parse()
    Message.model_validate(orjson.loads(raw.http_response.content))
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["request-id"].startswith("req_011C")
    assert re.fullmatch(r"msg_01[A-Za-z0-9]{22}", message.id)
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert len(message.content) == 1 and message.content[0].type == "text"
    text = message.content[0].text
    usage = message.usage
    assert usage.input_tokens == count_tokens(USER[0]["content"]) + 3 == count_prompt_tokens(body())
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
    assert usage.output_tokens == count_tokens(text) and 8 <= usage.output_tokens <= 40


async def test_replies_are_deterministic(claude: anthropic.AsyncAnthropic) -> None:
    first = await claude.messages.create(model=MODEL, max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    second = await claude.messages.create(model=MODEL, max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    assert first.content == second.content and first.id != second.id
    other = await claude.messages.create(model=MODEL, max_tokens=1024, system="Be terse.", messages=USER)  # type: ignore[arg-type]
    assert other.content != first.content


async def test_stream_matches_the_reply(claude: anthropic.AsyncAnthropic) -> None:
    whole = await claude.messages.create(model=MODEL + "#tokens=12", max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    async with claude.messages.stream(model=MODEL + "#tokens=12", max_tokens=1024, messages=USER) as stream:  # type: ignore[arg-type]
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) == 12
    assert blocks(final) == blocks(whole) and final.usage.output_tokens == whole.usage.output_tokens == 12
    assert final.stop_reason == "end_turn"


async def test_stream_wire_format(http: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(http, body(model=MODEL + "#tokens=3;chunk_tokens=2", stream=True))
    assert status == 200 and headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = sse_events(raw)
    assert [name for name, _ in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    assert events[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [e[1]["delta"]["type"] for e in events[3:5]] == ["text_delta", "text_delta"]
    delta = events[6][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 3


async def test_max_tokens_and_stop_sequences(claude: anthropic.AsyncAnthropic) -> None:
    cut = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 5
    full = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=100, messages=USER)  # type: ignore[arg-type]
    word = full.content[0].text.split()[3]  # type: ignore[union-attr]
    stopped = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=100, messages=USER,  # type: ignore[arg-type]
                                           stop_sequences=[word, "zzz"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert word not in stopped.content[0].text  # type: ignore[union-attr]


# -- tools ---------------------------------------------------------------------------------------------------


async def test_tool_use_when_a_tool_is_named(claude: anthropic.AsyncAnthropic) -> None:
    messages = [{"role": "user", "content": "What is the weather? Use get_weather and get_time."}]
    message = await claude.messages.create(model=MODEL, max_tokens=1024, messages=messages, tools=[WEATHER, TIME])  # type: ignore[arg-type, list-item]
    assert message.stop_reason == "tool_use"
    uses = [block for block in message.content if block.type == "tool_use"]
    assert [use.name for use in uses] == ["get_weather", "get_time"]
    for use in uses:
        assert re.fullmatch(r"toolu_01[A-Za-z0-9]{22}", use.id)
        schema = WEATHER["input_schema"] if use.name == "get_weather" else TIME["input_schema"]
        jsonschema.validate(use.input, schema)
    single = await claude.messages.create(model=MODEL, max_tokens=1024, messages=messages, tools=[WEATHER, TIME],  # type: ignore[arg-type, list-item]
                                          tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [block.name for block in single.content if block.type == "tool_use"] == ["get_weather"]


async def test_tool_choice(claude: anthropic.AsyncAnthropic) -> None:
    async def names(choice: dict[str, Any], text: str = "Hello") -> list[str]:
        message = await claude.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER, TIME],  # type: ignore[list-item]
                                               messages=[{"role": "user", "content": text}],
                                               tool_choice=choice)  # type: ignore[arg-type]
        return [block.name for block in message.content if block.type == "tool_use"]

    assert await names({"type": "auto"}) == []
    assert await names({"type": "any"}) == ["get_weather"]
    assert await names({"type": "tool", "name": "get_time"}) == ["get_time"]
    assert await names({"type": "none"}, "use get_weather") == []


async def test_tool_use_stream(claude: anthropic.AsyncAnthropic, http: aiohttp.ClientSession) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 1024, "tools": [WEATHER, TIME],
                              "messages": [{"role": "user", "content": "use get_weather and get_time"}]}
    whole = await claude.messages.create(**kwargs)
    async with claude.messages.stream(**kwargs) as stream:
        final = await stream.get_final_message()
    assert blocks(final) == blocks(whole) and final.stop_reason == "tool_use"
    _, _, raw = await post(http, {**kwargs, "stream": True})
    events = sse_events(raw)
    starts = [e for name, e in events if name == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["tool_use", "tool_use"]
    assert starts[0]["content_block"]["input"] == {}
    partial = [e["delta"]["partial_json"] for name, e in events
               if name == "content_block_delta" and e["index"] == 0]
    assert partial[0] == "" and orjson.loads("".join(partial)) == whole.content[0].input  # type: ignore[union-attr]


async def test_tool_result_round_trip(claude: anthropic.AsyncAnthropic) -> None:
    first = await claude.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER],  # type: ignore[list-item]
                                         messages=[{"role": "user", "content": "get_weather in Oslo"}])
    use = first.content[0]
    assert use.type == "tool_use"
    messages = [{"role": "user", "content": "get_weather in Oslo"},
                {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Snow, -3"},
                                             {"type": "text", "text": "Thanks!"}]}]
    answer = await claude.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)  # type: ignore[arg-type, list-item]
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == "Tool result: Snow, -3"  # type: ignore[union-attr]


# -- structured output, thinking, caching --------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"], "additionalProperties": False}


async def test_structured_output(claude: anthropic.AsyncAnthropic, http: aiohttp.ClientSession) -> None:
    message = await claude.messages.create(model=MODEL, max_tokens=1024, messages=USER,  # type: ignore[arg-type]
                                           output_config={"format": {"type": "json_schema", "schema": SCHEMA}})
    jsonschema.validate(orjson.loads(message.content[0].text), SCHEMA)  # type: ignore[union-attr]
    beta = {**HEADERS, "anthropic-beta": "structured-outputs-2025-11-13"}
    status, _, raw = await post(http, body(output_format={"type": "json_schema", "schema": SCHEMA}), beta)
    assert status == 200
    jsonschema.validate(orjson.loads(orjson.loads(raw)["content"][0]["text"]), SCHEMA)
    status, _, raw = await post(http, body(output_format={"type": "json_schema", "schema": SCHEMA}))
    assert status == 400 and b"output_format: Extra inputs are not permitted" in raw


async def test_thinking(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model=MODEL + "#reasoning=20", max_tokens=2048, messages=USER,  # type: ignore[arg-type]
                                           thinking=THINKING)  # type: ignore[arg-type]
    thinking, text = message.content
    assert thinking.type == "thinking" and text.type == "text"
    assert count_tokens(thinking.thinking) == 20 and thinking.signature
    assert message.usage.output_tokens == 20 + count_tokens(text.text)
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 20
    async with claude.messages.stream(model=MODEL + "#reasoning=20", max_tokens=2048, messages=USER,  # type: ignore[arg-type]
                                      thinking=THINKING) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert blocks(final) == blocks(message)
    omitted = await claude.messages.create(model=MODEL + "#reasoning=20", max_tokens=2048, messages=USER,  # type: ignore[arg-type]
                                           thinking={**THINKING, "display": "omitted"})  # type: ignore[arg-type]
    block = omitted.content[0]
    assert block.type == "thinking" and block.thinking == "" and block.signature == thinking.signature
    assert omitted.usage.output_tokens == message.usage.output_tokens


async def test_thinking_blocks_go_back_with_their_signatures(claude: anthropic.AsyncAnthropic) -> None:
    ask = [{"role": "user", "content": "Use get_weather for Oslo"}]
    first = await claude.messages.create(model=MODEL, max_tokens=2048, messages=ask, tools=[WEATHER],  # type: ignore[arg-type, list-item]
                                         thinking=THINKING)  # type: ignore[arg-type]
    thinking, use = first.content
    assert thinking.type == "thinking" and use.type == "tool_use"

    def loop(blocks: list[Any]) -> list[dict[str, Any]]:
        return [*ask, {"role": "assistant", "content": blocks},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}]}]

    kept = [thinking.model_dump(), use.model_dump(exclude_none=True)]
    answer = await claude.messages.create(model=MODEL, max_tokens=2048, messages=loop(kept), tools=[WEATHER],  # type: ignore[arg-type, list-item]
                                          thinking=THINKING)  # type: ignore[arg-type]
    assert answer.content[-1].text == "Tool result: Sunny"  # type: ignore[union-attr]
    forged = [{**kept[0], "signature": sign_thinking(1)[:-8] + "AAAAAAA="}, kept[1]]
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature` in `thinking` block"):
        await claude.messages.create(model=MODEL, max_tokens=2048, messages=loop(forged), tools=[WEATHER],  # type: ignore[arg-type, list-item]
                                     thinking=THINKING)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        await claude.messages.create(model=MODEL, max_tokens=2048, messages=loop(kept[1:]), tools=[WEATHER],  # type: ignore[arg-type, list-item]
                                     thinking=THINKING)  # type: ignore[arg-type]
    plain = await claude.messages.create(model=MODEL, max_tokens=2048, messages=loop(kept[1:]), tools=[WEATHER])  # type: ignore[arg-type, list-item]
    assert plain.content[0].type == "text"  # without thinking, the blocks may be left out


async def test_cache_usage(claude: anthropic.AsyncAnthropic) -> None:
    system = [{"type": "text", "text": "You are a careful assistant who answers briefly.",
               "cache_control": {"type": "ephemeral"}}]
    total = count_prompt_tokens(body(system=system))
    system_tokens = count_tokens(system[0]["text"])
    written = await claude.messages.create(model=MODEL, max_tokens=1024, system=system, messages=USER)  # type: ignore[arg-type]
    usage = written.usage
    assert usage.cache_creation_input_tokens == system_tokens and usage.cache_read_input_tokens == 0
    assert usage.input_tokens == total - system_tokens
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == system_tokens
    read = await claude.messages.create(model=MODEL + f"#cached={system_tokens}", max_tokens=1024, system=system,  # type: ignore[arg-type]
                                        messages=USER)
    assert (read.usage.cache_read_input_tokens, read.usage.cache_creation_input_tokens) == (system_tokens, 0)
    assert read.usage.input_tokens == total - system_tokens
    whole = await claude.messages.create(model=MODEL + "#cached=2", max_tokens=1024, messages=USER,  # type: ignore[arg-type]
                                         cache_control={"type": "ephemeral", "ttl": "1h"})
    plain_total = count_prompt_tokens(body())
    assert (whole.usage.cache_read_input_tokens, whole.usage.cache_creation_input_tokens) == (2, plain_total - 2)
    assert whole.usage.cache_creation is not None and whole.usage.cache_creation.ephemeral_1h_input_tokens == \
        whole.usage.cache_creation_input_tokens
    plain = await claude.messages.create(model=MODEL + "#cached=3", max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    assert (plain.usage.cache_read_input_tokens, plain.usage.cache_creation_input_tokens) == (3, 0)
    assert plain.usage.input_tokens == plain_total - 3


async def test_images_and_documents_are_counted(claude: anthropic.AsyncAnthropic) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
               {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
               {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
               {"type": "text", "text": "Describe"}]
    message = await claude.messages.create(model=MODEL, max_tokens=1024,  # type: ignore[arg-type]
                                           messages=[{"role": "user", "content": content}])
    assert message.usage.input_tokens == 4 * 85 + 1 + 3


# -- refusals ------------------------------------------------------------------------------------------------

TOOL_TURN = [{"role": "user", "content": "go"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                "input": {}}]}]
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"model": MODEL, "messages": USER}, "max_tokens: Field required"),
    ({"max_tokens": 10, "messages": USER}, "model: Field required"),
    (body(messages=[]), "at least one message"),
    (body(messages=[{"role": "system", "content": "x"}, *USER]), 'Unexpected role "system"'),
    (body(messages=[{"role": "assistant", "content": "hi"}, *USER]), 'first message must use the "user" role'),
    (body(messages=[*USER, *USER]), 'roles must alternate between "user" and "assistant"'),
    (body(messages=[{"role": "user", "content": ""}]), "must have non-empty content"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
     "text content blocks must be non-empty"),
    (body(messages=[{"role": "user", "content": [{"type": "video", "url": "x"}]}]), "Input tag 'video'"),
    (body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}]),
     "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x"),
    (body(messages=[*TOOL_TURN, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2"}]}]),
     "unexpected `tool_use_id`"),
    (body(messages=[*TOOL_TURN, {"role": "user", "content": "never mind"}]),
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    (body(messages=[*TOOL_TURN, {"role": "user", "content": [{"type": "text", "text": "x"}, {
        "type": "tool_result", "tool_use_id": "toolu_1"}]}]), "`tool_result` blocks must come first"),
    (body(temperature=1.5), "temperature: Input should be less than or equal to 1"),
    (body(top_p=-0.1), "top_p: Input should be greater than or equal to 0"),
    (body(thinking={"type": "enabled", "budget_tokens": 500}),
     "budget_tokens: Input should be greater than or equal to 1024"),
    (body(thinking={"type": "enabled", "budget_tokens": 1024}),
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (body(max_tokens=2048, thinking=THINKING, temperature=0.5), "`temperature` may only be set to 1"),
    (body(max_tokens=2048, thinking=THINKING, top_k=5), "`top_k` must be unset"),
    (body(max_tokens=2048, thinking=THINKING, tools=[WEATHER], tool_choice={"type": "any"}),
     "Thinking may not be enabled when tool_choice forces tool use"),
    (body(reasoning={"effort": "high"}), "reasoning: Extra inputs are not permitted"),
    (body(messages=[{"role": "user", "content": "x", "name": "bob"}]), "messages.0.name: Extra inputs"),
    (body(metadata={"user_id": "u", "session": "s"}), "metadata.session: Extra inputs"),
    (body(tool_choice={"type": "auto"}), "tool_choice may only be specified while providing tools"),
    (body(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}), "Tool 'nope' not found"),
    (body(tools=[{"name": "f", "input_schema": {"type": "array"}}]), "input_schema.type: Input should be 'object'"),
    (body(tools=[WEATHER, WEATHER]), "Tool names must be unique"),
    (body(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"),
    (body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
    (body(messages=[{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": "AAAA"}}]}]), "media_type: Input should be"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": "x",
                                                  "cache_control": {"type": "forever"}}]}]),
     "Input should be 'ephemeral'"),
]


@pytest.mark.parametrize(("payload", "message"), INVALID)
async def test_refused_requests(http: aiohttp.ClientSession, payload: dict[str, Any], message: str) -> None:
    status, headers, raw = await post(http, payload)
    assert status == 400, raw
    error = orjson.loads(raw)
    assert set(error) == {"type", "error", "request_id"} and error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert headers["request-id"] == error["request_id"]


async def test_refusals_through_the_sdk(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model=MODEL, max_tokens=10, messages=[*USER, *USER])  # type: ignore[arg-type]
    assert caught.value.type == "invalid_request_error"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


async def test_headers_and_body_must_be_right(http: aiohttp.ClientSession, sim: SimServer) -> None:
    status, _, raw = await post(http, body(), {"anthropic-version": "2023-06-01"})
    assert status == 401 and orjson.loads(raw)["error"] == {"type": "authentication_error",
                                                             "message": "x-api-key header is required"}
    status, _, raw = await post(http, body(), {"Authorization": "Bearer sk-ant", "anthropic-version": "2023-06-01"})
    assert status == 200
    status, _, raw = await post(http, body(), {"x-api-key": "k"})
    assert status == 400 and b"anthropic-version: header is required" in raw
    status, _, raw = await post(http, b"{not json")
    assert status == 400 and orjson.loads(raw)["error"]["type"] == "invalid_request_error"
    assert sim.requests[-1].path == "/v1/messages"


# -- directives ----------------------------------------------------------------------------------------------

STATUS_ERRORS: list[tuple[int, type[anthropic.APIStatusError], str]] = [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (401, anthropic.AuthenticationError, "authentication_error"),
    (402, anthropic.PaymentRequiredError, "billing_error"),
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (413, anthropic.ContentTooLargeError, "request_too_large"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (504, anthropic.GatewayTimeoutError, "timeout_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "exception", "type_"), STATUS_ERRORS)
async def test_status(claude: anthropic.AsyncAnthropic, status: int, exception: type[anthropic.APIStatusError],
                      type_: str) -> None:
    for stream in (False, True):
        with pytest.raises(exception) as caught:
            await claude.messages.create(model=f"{MODEL}#status={status}", max_tokens=10, messages=USER,  # type: ignore[arg-type]
                                         stream=stream)
        error = caught.value
        assert error.status_code == status and error.type == type_
        assert isinstance(error.body, dict) and set(error.body) == {"type", "error", "request_id"}
    if status == 404:
        assert f"model: {MODEL}" in error.message


async def test_retry_after_and_rate_limit_headers(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model=f"{MODEL}#status=429;retry_after=2", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2" and headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await claude.messages.create(model=f"{MODEL}#status=529;retry_after=1", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    assert overloaded.value.response.headers["retry-after"] == "1"


async def stream_text(claude: anthropic.AsyncAnthropic, model: str, into: list[str]) -> None:
    """Stream a reply's text into `into` (which keeps what arrived when the stream fails)."""
    async with claude.messages.stream(model=model, max_tokens=100, messages=USER) as stream:  # type: ignore[arg-type]
        async for text in stream.text_stream:
            into.append(text)


async def test_error_after_sends_an_error_event(claude: anthropic.AsyncAnthropic) -> None:
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await stream_text(claude, f"{MODEL}#tokens=20;error_after=3", texts)
    assert len(texts) == 3
    assert caught.value.type == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError):
        await claude.messages.create(model=f"{MODEL}#error_after=3", max_tokens=100, messages=USER)  # type: ignore[arg-type]


async def test_drop_after(claude: anthropic.AsyncAnthropic, sim: SimServer) -> None:
    texts: list[str] = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        await stream_text(claude, f"{MODEL}#tokens=20;drop_after=2", texts)
    assert len(texts) == 2
    assert (await sim.wait_idle())["dropped"] == 1


async def test_malformed(claude: anthropic.AsyncAnthropic, http: aiohttp.ClientSession) -> None:
    status, _, raw = await post(http, body(model=f"{MODEL}#malformed"))
    assert status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    _, _, raw = await post(http, body(model=f"{MODEL}#malformed;tokens=4", stream=True))
    assert b'"delta":{\n\n' in raw
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter|EOF"):
        await stream_text(claude, f"{MODEL}#malformed", [])


async def test_hang_and_fail_first(sim: SimServer) -> None:
    quick = anthropic.AsyncAnthropic(base_url=sim.url, api_key="k", max_retries=0, timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        await quick.messages.create(model=f"{MODEL}#hang", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    sim.set_behaviour(MODEL, "fail_first=2")
    for _ in range(2):
        with pytest.raises(anthropic.APIStatusError) as caught:
            await quick.messages.create(model=MODEL, max_tokens=10, messages=USER)  # type: ignore[arg-type]
        assert caught.value.status_code == 503
    assert (await quick.messages.create(model=MODEL, max_tokens=10, messages=USER)).content  # type: ignore[arg-type]
    await quick.close()


async def test_pacing(claude: anthropic.AsyncAnthropic) -> None:
    started = time.monotonic()
    async with claude.messages.stream(model=f"{MODEL}#ttft=150;tokens=10;tps=100", max_tokens=100,  # type: ignore[arg-type]
                                      messages=USER) as stream:
        arrivals = [time.monotonic() - started async for _ in stream.text_stream]
    assert arrivals[0] >= 0.14 and arrivals[-1] - arrivals[0] >= 0.06  # 9 gaps of 10 ms
