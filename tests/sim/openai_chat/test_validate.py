"""OpenAI Chat simulator: requests the API refuses get its error, field for field (`param`, `code`)."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pytest

from crossroads.sim import SimServer

from ..support import USER, chat, post_chat
from .support import WEATHER


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
    (chat(reasoning_effort="ultra"), "reasoning_effort", "invalid_value"),
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
