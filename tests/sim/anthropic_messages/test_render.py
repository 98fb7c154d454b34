"""Anthropic Messages simulator: the message body and the event stream, as the SDK and the wire format expect
them, and how a stream fails or is paced under directives."""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp
import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import Message

from crossroads.sim import SimServer
from crossroads.sim.anthropic_messages import count_prompt_tokens
from crossroads.sim.reply import count_tokens

from .support import MODEL, TIME, USER, WEATHER, blocks, body, post, sse_events, stream_text


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


async def test_pacing(claude: anthropic.AsyncAnthropic) -> None:
    started = time.monotonic()
    async with claude.messages.stream(model=f"{MODEL}#ttft=150;tokens=10;tps=100", max_tokens=100,  # type: ignore[arg-type]
                                      messages=USER) as stream:
        arrivals = [time.monotonic() - started async for _ in stream.text_stream]
    # 150 ms to the first token, then 9 gaps of 10 ms; measured from the request, as a busy client may read a
    # late first event together with the next ones.
    assert arrivals[0] >= 0.14 and arrivals[-1] >= 0.23
