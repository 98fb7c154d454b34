"""OpenAI Chat simulator: what a reply says (tokens, tool calls, JSON, stops, choices, usage), through the
official SDK."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import openai
import orjson

from crossroads.sim.openai_chat import count_prompt_tokens
from crossroads.sim.reply import count_tokens

from ..support import USER
from .support import SCHEMAS, TIME, WEATHER, streamed_calls


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
    streamed, _, _ = await streamed_calls(stream)
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


async def test_reasoning_effort_returns_reasoning_content(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o#tokens=10;reasoning=7", messages=USER, reasoning_effort="low"
    )
    message = completion.choices[0].message
    thought = (message.model_extra or {})["reasoning_content"]
    assert count_tokens(thought) == 7
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 7
    assert count_tokens(message.content or "") == 10

    default = await client.chat.completions.create(model="gpt-4o", messages=USER, reasoning_effort="high")
    assert default.usage is not None and default.usage.completion_tokens_details is not None
    reasoning_tokens = default.usage.completion_tokens_details.reasoning_tokens
    text = (default.choices[0].message.model_extra or {})["reasoning_content"]
    assert reasoning_tokens and count_tokens(text) == reasoning_tokens
