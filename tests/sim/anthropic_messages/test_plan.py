"""Anthropic Messages simulator: what a reply says (text, tool use, structured output, thinking, cache
usage), through the official `anthropic` SDK."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import anthropic
import jsonschema
import orjson

from crossroads.sim.anthropic_messages import count_prompt_tokens
from crossroads.sim.reply import count_tokens

from .support import HEADERS, MODEL, THINKING, TIME, USER, WEATHER, blocks, body, post


async def test_replies_are_deterministic(claude: anthropic.AsyncAnthropic) -> None:
    first = await claude.messages.create(model=MODEL, max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    second = await claude.messages.create(model=MODEL, max_tokens=1024, messages=USER)  # type: ignore[arg-type]
    assert first.content == second.content and first.id != second.id
    other = await claude.messages.create(model=MODEL, max_tokens=1024, system="Be terse.", messages=USER)  # type: ignore[arg-type]
    assert other.content != first.content


async def test_max_tokens_and_stop_sequences(claude: anthropic.AsyncAnthropic) -> None:
    cut = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 5
    full = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=100, messages=USER)  # type: ignore[arg-type]
    word = full.content[0].text.split()[3]  # type: ignore[union-attr]
    stopped = await claude.messages.create(model=MODEL + "#tokens=30", max_tokens=100, messages=USER,  # type: ignore[arg-type]
                                           stop_sequences=[word, "zzz"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert word not in stopped.content[0].text  # type: ignore[union-attr]


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
