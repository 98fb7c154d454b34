"""OpenAI Chat Completions fidelity: every reply and stream must parse with the official SDK."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import jsonschema
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crossroads.sim import SimServer
from crossroads.sim.openai_chat import count_prompt_tokens
from crossroads.sim.reply import count_tokens

from .support import USER, chat, post_chat, sse_payloads

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "format": "uuid"}},
            "required": ["zone"],
        },
    },
}
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in (WEATHER, TIME)}


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


async def test_replies_are_deterministic_per_conversation(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="gpt-4o", messages=USER)
    again = await client.chat.completions.create(model="other-model", messages=USER, temperature=1.5)
    other = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.id != again.id


async def test_tokens_and_max_tokens(client: openai.AsyncOpenAI) -> None:
    exact = await client.chat.completions.create(model="gpt-4o#tokens=30", messages=USER)
    assert exact.model == "gpt-4o"
    assert exact.usage is not None
    assert exact.usage.completion_tokens == 30
    assert exact.choices[0].finish_reason == "stop"

    for cap in ({"max_tokens": 5}, {"max_completion_tokens": 5}):
        capped = await client.chat.completions.create(model="gpt-4o#tokens=30", messages=USER, **cap)
        assert capped.usage.completion_tokens == 5
        assert capped.choices[0].finish_reason == "length"
        assert (
            capped.choices[0].message.content
            == "".join(exact.choices[0].message.content)[: len(capped.choices[0].message.content)]
        )


async def test_prompt_token_count(client: openai.AsyncOpenAI) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    completion = await client.chat.completions.create(model="gpt-4o", messages=messages)
    expected = (3 + 3) + (3 + 6) + 85
    assert count_prompt_tokens(messages) == expected
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == expected


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
    assert all("obfuscation" not in orjson.loads(p) and "usage" not in orjson.loads(p) for p in sse_payloads(raw)[:-1])


async def test_chunk_tokens(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=10;chunk_tokens=3",
        messages=USER,
        stream=True,
    )
    contents = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices[0].delta.content]
    assert [count_tokens(text) for text in contents] == [3, 3, 3, 1]


async def test_tool_call(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Use get_weather for Paris please."}],
        tools=[WEATHER, TIME],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call.id)
    assert call.function.name == "get_weather"
    jsonschema.validate(orjson.loads(call.function.arguments), SCHEMAS["get_weather"])
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens(call.function.arguments)

    again = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Use get_weather for Paris please."}],
        tools=[WEATHER, TIME],
    )
    assert again.choices[0].message.tool_calls == calls


async def _streamed_calls(stream: Any) -> tuple[dict[int, dict[str, Any]], list[Any], str | None]:
    calls: dict[int, dict[str, Any]] = {}
    deltas = []
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                deltas.append(delta)
                entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                if delta.id:
                    entry["id"] = delta.id
                if delta.function and delta.function.name:
                    entry["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    entry["arguments"] += delta.function.arguments
    return calls, deltas, finish


async def test_tool_call_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[WEATHER],
        stream=True,
    )
    calls, deltas, finish = await _streamed_calls(stream)
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


async def test_parallel_tool_calls(client: openai.AsyncOpenAI) -> None:
    messages = [{"role": "user", "content": "Call get_time and get_weather for Oslo."}]
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert len({call.id for call in calls}) == 2
    for call in calls:
        jsonschema.validate(orjson.loads(call.function.arguments), SCHEMAS[call.function.name])

    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        tools=[WEATHER, TIME],
        tool_choice="required",
        stream=True,
    )
    streamed, _, _ = await _streamed_calls(stream)
    assert [(entry["id"], entry["name"], entry["arguments"]) for entry in streamed.values()] == [
        (call.id, call.function.name, call.function.arguments) for call in calls
    ]

    single = await client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert len(single.choices[0].message.tool_calls or []) == 1


async def test_tool_choice_variants(client: openai.AsyncOpenAI) -> None:
    plain = [{"role": "user", "content": "Hello there"}]
    named = await client.chat.completions.create(
        model="gpt-4o",
        messages=plain,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [call.function.name for call in named.choices[0].message.tool_calls or []] == ["get_time"]

    required = await client.chat.completions.create(
        model="gpt-4o",
        messages=plain,
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    assert [call.function.name for call in required.choices[0].message.tool_calls or []] == ["get_weather"]

    auto = await client.chat.completions.create(model="gpt-4o", messages=plain, tools=[WEATHER])
    assert auto.choices[0].message.tool_calls is None
    assert auto.choices[0].finish_reason == "stop"

    none = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "get_weather please"}],
        tools=[WEATHER],
        tool_choice="none",
    )
    assert none.choices[0].message.content


async def test_tool_result_round_trip(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What is the weather? Use get_weather."}],
        tools=[WEATHER],
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    messages: list[Any] = [
        {"role": "user", "content": "What is the weather? Use get_weather."},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"},
    ]
    second = await client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert "22 degrees and sunny" in (second.choices[0].message.content or "")


async def test_json_object(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=USER, response_format={"type": "json_object"}
    )
    value = orjson.loads(completion.choices[0].message.content or "")
    assert isinstance(value, dict)


JSON_SCHEMA = {
    "type": "object",
    "$defs": {
        "Item": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            "required": ["sku", "qty"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "total": {"type": "number", "minimum": 0},
        "paid": {"type": "boolean"},
    },
    "required": ["items", "status", "note", "total", "paid"],
    "additionalProperties": False,
}


async def test_json_schema(client: openai.AsyncOpenAI) -> None:
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "order", "strict": True, "schema": JSON_SCHEMA},
    }
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER, response_format=response_format)
    content = completion.choices[0].message.content or ""
    jsonschema.validate(orjson.loads(content), JSON_SCHEMA)

    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, response_format=response_format, stream=True
    )
    pieces = [
        chunk.choices[0].delta.content async for chunk in stream if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(pieces) > 5
    assert "".join(pieces) == content


async def test_logprobs(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o#tokens=6", messages=USER, logprobs=True, top_logprobs=3
    )
    choice = completion.choices[0]
    assert choice.logprobs is not None
    entries = choice.logprobs.content or []
    assert "".join(entry.token for entry in entries) == choice.message.content
    assert len(entries) == 6
    for entry in entries:
        assert entry.logprob <= 0
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token

    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=6;chunk_tokens=2", messages=USER, logprobs=True, stream=True
    )
    streamed = []
    async for chunk in stream:
        choice_delta = chunk.choices[0]
        if choice_delta.delta.content:
            assert choice_delta.logprobs is not None
            assert len(choice_delta.logprobs.content or []) == 2
            streamed.extend(choice_delta.logprobs.content or [])
    assert [entry.token for entry in streamed] == [entry.token for entry in entries]
    assert all(entry.top_logprobs == [] for entry in streamed)


async def test_stop_sequences(client: openai.AsyncOpenAI) -> None:
    full = await client.chat.completions.create(model="gpt-4o#tokens=30", messages=USER)
    text = full.choices[0].message.content or ""
    words = text.split()
    stop = words[len(words) // 2]
    expected = text[: text.index(stop)]

    cut = await client.chat.completions.create(model="gpt-4o#tokens=30", messages=USER, stop=[stop, "zzzz"])
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage is not None
    assert cut.usage.completion_tokens == count_tokens(expected)

    stream = await client.chat.completions.create(model="gpt-4o#tokens=30", messages=USER, stop=stop, stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_n_choices(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER, n=2)
    assert [choice.index for choice in completion.choices] == [0, 1]
    texts = [choice.message.content for choice in completion.choices]
    assert texts[0] != texts[1]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == sum(count_tokens(text or "") for text in texts)

    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, n=2, stream=True)
    streamed = {0: "", 1: ""}
    finished = set()
    async for chunk in stream:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert [streamed[0], streamed[1]] == texts
    assert finished == {0, 1}


async def test_reasoning_and_cached_usage(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o#tokens=10;reasoning=7;cached=4", messages=USER)
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == 17
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 4
    assert count_tokens(completion.choices[0].message.content or "") == 10

    capped = await client.chat.completions.create(
        model="gpt-4o#tokens=10;reasoning=7", messages=USER, max_completion_tokens=9
    )
    assert capped.usage is not None
    assert capped.usage.completion_tokens == 9
    assert capped.choices[0].finish_reason == "length"


async def test_unknown_fields_are_accepted_and_recorded(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        extra_body={"provider": {"order": ["a"]}, "transforms": []},
        extra_headers={"X-Title": "tests"},
    )
    recorded = sim.requests[-1]
    assert recorded.path == "/v1/chat/completions"
    assert recorded.method == "POST"
    assert recorded.body["provider"] == {"order": ["a"]}
    assert recorded.body["transforms"] == []
    assert recorded.headers["x-title"] == "tests"
    assert recorded.headers["authorization"] == "Bearer sk-test"


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    await client.chat.completions.create(model="custom/model-x#tokens=1", messages=USER)
    models = [model.id async for model in client.models.list()]
    assert "gpt-4o" in models
    assert "custom/model-x" in models


ASKED = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
}
VALIDATION_CASES: list[tuple[dict[str, Any], str, str | None]] = [
    ({"messages": USER}, "model", None),
    ({"model": "gpt-4o"}, "messages", "missing_required_parameter"),
    (chat(messages=[]), "messages", "empty_array"),
    (chat(messages="hi"), "messages", "invalid_type"),
    (chat(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "invalid_value"),
    (chat(messages=[{"role": "user"}]), "messages[0].content", "missing_required_parameter"),
    (chat(messages=[{"role": "assistant", "content": None}]), "messages[0].content", "missing_required_parameter"),
    (
        chat(messages=[*USER, {"role": "tool", "content": "x"}]),
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (chat(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type", "invalid_value"),
    (chat(messages=[*USER, {"role": "tool", "tool_call_id": "c1", "content": "x"}]), "messages.[1].role", None),
    (chat(messages=[*USER, ASKED]), "messages.[1].role", None),
    (chat(messages=[*USER, ASKED, {"role": "user", "content": "and?"}]), "messages.[1].role", None),
    (
        chat(messages=[*USER, ASKED, {"role": "tool", "tool_call_id": "c9", "content": "x"}]),
        "messages.[2].tool_call_id",
        None,
    ),
    (
        chat(messages=[*USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}]),
        "messages[1].tool_calls[0].function",
        "missing_required_parameter",
    ),
    (chat(temperature=2.5), "temperature", "decimal_above_max_value"),
    (chat(temperature=-1), "temperature", "decimal_below_min_value"),
    (chat(temperature="hot"), "temperature", "invalid_type"),
    (chat(top_p=1.5), "top_p", "decimal_above_max_value"),
    (chat(n=0), "n", "integer_below_min_value"),
    (chat(max_tokens=0), "max_tokens", "integer_below_min_value"),
    (chat(max_completion_tokens=0), "max_completion_tokens", "integer_below_min_value"),
    (chat(top_logprobs=2), "top_logprobs", "invalid_value"),
    (chat(logprobs=True, top_logprobs=21), "top_logprobs", "integer_above_max_value"),
    (chat(stream_options={"include_usage": True}), "stream_options", "invalid_value"),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    (chat(tool_choice="auto"), "tool_choice", None),
    (chat(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice", None),
    (chat(tools=[{"type": "function"}]), "tools[0].function", "missing_required_parameter"),
    (chat(response_format={"type": "yaml"}), "response_format.type", "invalid_value"),
    (
        chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
        "missing_required_parameter",
    ),
]


@pytest.mark.parametrize(("body", "param", "code"), VALIDATION_CASES)
async def test_validation_errors(
    http: aiohttp.ClientSession, body: dict[str, Any], param: str, code: str | None
) -> None:
    status, headers, raw = await post_chat(http, body)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    error = orjson.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"]


async def test_validation_errors_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=USER, temperature=3)
    assert caught.value.status_code == 400
    assert caught.value.param == "temperature"
    assert caught.value.code == "decimal_above_max_value"
    assert "Expected a value <= 2, but got 3 instead" in caught.value.message


async def test_invalid_json_body(http: aiohttp.ClientSession) -> None:
    status, _, raw = await post_chat(http, b"{not json")
    assert status == 400
    assert orjson.loads(raw)["error"]["message"].startswith("We could not parse the JSON body")


async def test_missing_api_key(http: aiohttp.ClientSession, sim: SimServer) -> None:
    async with http.post("/v1/chat/completions", data=orjson.dumps(chat())) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert error["type"] == "invalid_request_error"
    assert sim.requests[-1].body == chat()

    bare = openai.AsyncOpenAI(
        base_url=sim.url + "/v1", api_key="x", max_retries=0, default_headers={"Authorization": ""}
    )
    try:
        with pytest.raises(openai.AuthenticationError):
            await bare.chat.completions.create(model="gpt-4o", messages=USER)
    finally:
        await bare.close()


async def test_unknown_url(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/nope", headers={"Authorization": "Bearer x"}) as response:
        assert response.status == 404
        error = (await response.json())["error"]
    assert error == {
        "message": "Invalid URL (POST /v1/nope)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    async with http.get("/v1/chat/completions") as response:
        assert response.status == 404
