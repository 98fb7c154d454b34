"""Anthropic Messages simulator: requests the real API refuses are refused the same way, in Anthropic's
error shape; thinking blocks must come back with the signatures the simulator issued."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from crossroads.sim import SimServer
from crossroads.sim.anthropic_messages import sign_thinking

from .support import MODEL, THINKING, USER, WEATHER, body, post


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
