"""OpenAI Chat simulator: the body and the SSE stream, as the official SDK and the wire format expect them."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import jsonschema
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crossroads.sim.reply import count_tokens

from ..support import USER, chat, post_chat, sse_payloads
from .support import SCHEMAS, WEATHER, streamed_calls


async def test_plain_completion(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    completion = raw.parse()
    body = orjson.loads(raw.http_response.content)
    ChatCompletion.model_validate(body)

    assert raw.headers["content-type"].startswith("application/json")
    assert raw.headers["x-request-id"].startswith("req_")
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", completion.id)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.system_fingerprint is not None
    assert completion.system_fingerprint.startswith("fp_sim")
    assert completion.service_tier == "default"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": completion.choices[0].message.content,
        "refusal": None,
        "annotations": [],
    }
    assert body["choices"][0]["logprobs"] is None
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == count_tokens(USER[0]["content"]) + 3
    assert usage.completion_tokens == count_tokens(choice.message.content)
    assert 8 <= usage.completion_tokens <= 40
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert body["usage"]["completion_tokens_details"] == {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }


async def test_stream_without_usage(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(model="gpt-4o", messages=USER)
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert all(chunk.usage is None for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == "gpt-4o" for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == plain.choices[0].message.content
    assert len(chunks) == 2 + count_tokens(text)


async def test_stream_with_include_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=12",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 12
    assert last.usage.prompt_tokens == count_tokens(USER[0]["content"]) + 3
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_stream_wire_format(http: aiohttp.ClientSession) -> None:
    body = chat(model="gpt-4o#tokens=4", stream=True, stream_options={"include_usage": True})
    status, headers, raw = await post_chat(http, body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(payload) for payload in payloads[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert "usage" in chunk
        assert isinstance(chunk["obfuscation"], str)
    assert chunks[0]["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert [c["choices"][0]["delta"] for c in chunks[1:5]] == [
        {"content": piece} for piece in (c["choices"][0]["delta"]["content"] for c in chunks[1:5])
    ]
    assert chunks[5]["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert all(chunk["usage"] is None for chunk in chunks[:6])
    assert chunks[6]["choices"] == []
    assert chunks[6]["usage"]["completion_tokens"] == 4
    assert len(chunks) == 7

    status, _, raw = await post_chat(http, chat(stream=True, stream_options={"include_obfuscation": False}))
    assert status == 200
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]" and len(payloads) > 3  # role chunk, content, finish chunk, [DONE]
    assert all("obfuscation" not in orjson.loads(p) and "usage" not in orjson.loads(p) for p in payloads[:-1])


async def test_chunk_tokens(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=10;chunk_tokens=3",
        messages=USER,
        stream=True,
    )
    contents = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices[0].delta.content]
    assert [count_tokens(text) for text in contents] == [3, 3, 3, 1]


async def test_reasoning_content_streams_ahead_of_the_answer(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o#tokens=10;reasoning=7", messages=USER, reasoning_effort="low"
    )
    message = completion.choices[0].message
    thought = (message.model_extra or {})["reasoning_content"]
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=10;reasoning=7", messages=USER, reasoning_effort="low", stream=True
    )
    deltas = [chunk.choices[0].delta async for chunk in stream]
    thoughts = [(delta.model_extra or {}).get("reasoning_content") for delta in deltas]
    assert deltas[0].role == "assistant"
    assert [bool(t) for t in thoughts] == [True] * 7 + [False] * (len(thoughts) - 7)  # a token a chunk, first
    assert "".join(t or "" for t in thoughts) == thought
    assert "".join(delta.content or "" for delta in deltas[7:]) == message.content


@pytest.mark.parametrize("fields", [{}, {"reasoning_effort": "none"}])
async def test_reasoning_stays_hidden_without_reasoning_effort(
    http: aiohttp.ClientSession, fields: dict[str, Any]
) -> None:
    status, _, raw = await post_chat(http, chat(model="gpt-4o#reasoning=7", **fields))
    body = orjson.loads(raw)
    assert status == 200 and body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7
    assert "reasoning_content" not in body["choices"][0]["message"]
    status, _, raw = await post_chat(http, chat(model="gpt-4o#reasoning=7", stream=True, **fields))
    assert status == 200 and b"reasoning_content" not in raw


async def test_tool_call_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[WEATHER],
        stream=True,
    )
    calls, deltas, finish = await streamed_calls(stream)
    assert finish == "tool_calls"
    assert list(calls) == [0]
    first = deltas[0]
    assert first.id is not None
    assert first.type == "function"
    assert first.function.name == "get_weather"
    assert first.function.arguments == ""
    assert len(deltas) > 2
    for later in deltas[1:]:
        assert later.id is None
        assert later.type is None
        assert later.function.name is None
    jsonschema.validate(orjson.loads(calls[0]["arguments"]), SCHEMAS["get_weather"])


async def test_tool_call_stream_wire_format(http: aiohttp.ClientSession) -> None:
    body = chat(messages=[{"role": "user", "content": "get_weather now"}], tools=[WEATHER], stream=True)
    _, _, raw = await post_chat(http, body)
    chunks = [orjson.loads(payload) for payload in sse_payloads(raw)[:-1]]
    head = chunks[0]["choices"][0]["delta"]
    assert head["role"] == "assistant"
    assert head["content"] is None
    assert head["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert set(head["tool_calls"][0]) == {"index", "id", "type", "function"}
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0].keys() == {"index", "function"}
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"].keys() == {"arguments"}


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    await client.chat.completions.create(model="custom/model-x#tokens=1", messages=USER)
    models = [model.id async for model in client.models.list()]
    assert "gpt-4o" in models
    assert "custom/model-x" in models
