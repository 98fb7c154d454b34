"""`POST /api/v1/responses` end to end through the official `openai` SDK (`responses.create` and
`responses.stream`), for a model of each upstream wire format, answered by the built-in simulator."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import openai
import pytest

from crossroads.schema.responses import SEAL, unseal_reasoning
from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog

MODELS = ["openai/gpt-4o", "anthropic/claude-sonnet-4.5", "google/gemini-2.5-flash"]
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
CITY = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"], "additionalProperties": False}
#: A 1×1 PNG.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")).decode()


def client(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url, api_key=gateway.key, max_retries=0)


async def respond(c: openai.AsyncOpenAI, stream: bool, **kwargs: Any) -> Any:
    """One response, created whole or streamed (then the stream's final response)."""
    if not stream:
        return await c.responses.create(**kwargs)
    async with c.responses.stream(**kwargs) as events:
        types = [event.type async for event in events]
        final = await events.get_final_response()
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    return final


def _plain(item: Any) -> dict[str, Any]:
    """An output item without its id (each response has its own) and the SDK's client-side `parsed`."""
    data: dict[str, Any] = item.to_dict()
    del data["id"]
    for part in data.get("content", ()):
        part.pop("parsed", None)
    return data


def upstream(gateway: Gateway) -> dict[str, Any]:
    assert gateway.services.simulator is not None
    body: dict[str, Any] = gateway.services.simulator.requests[-1].body
    return body


@pytest.mark.parametrize("model", MODELS)
async def test_text_reply_whole_and_streamed_agree(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        whole = await c.responses.create(model=model, input="Say hello", instructions="Be brief.")
        async with c.responses.stream(model=model, input="Say hello", instructions="Be brief.") as events:
            deltas = [event.delta async for event in events if event.type == "response.output_text.delta"]
            final = await events.get_final_response()
    assert whole.object == "response" and whole.status == "completed" and whole.model == model
    assert whole.output_text and "".join(deltas) == whole.output_text
    (item,) = whole.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    strip = {"id", "created_at", "completed_at", "output", "output_text"}  # each response's own clock
    assert final.model_dump(exclude=strip) == whole.model_dump(exclude=strip)
    finished = [r.model_dump()["completed_at"] for r in (whole, final)]
    assert all(finished) and abs(finished[1] - finished[0]) < 5
    assert [_plain(i) for i in final.output] == [_plain(i) for i in whole.output]
    usage = whole.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0 and usage.input_tokens_details.cached_tokens == 0
    assert (usage.model_extra or {})["cost"] > 0


async def test_the_event_sequence_is_numbered_and_complete(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{gateway.url}/responses", headers=gateway.auth,
            json={"model": "openai/gpt-4o", "input": "Hi", "stream": True}) as reply:
        assert reply.status == 200 and reply.content_type == "text/event-stream"
        frames = (await reply.text()).strip().split("\n\n")
    events = []
    for frame in frames:
        kind, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {event['type']}"
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["id"] == reply.headers["X-Generation-Id"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert completed["output"][0]["content"][0]["text"] == text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_function_tool_round_trip(gateway: Gateway, model: str, stream: bool) -> None:
    history: list[Any] = [{"role": "user", "content": "Use get_weather for Oslo."}]
    async with client(gateway) as c:
        first = await respond(c, stream, model=model, input=history, tools=[WEATHER])
        (call,) = first.output
        assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
        assert set(json.loads(call.arguments)) == {"city"} and call.call_id
        history += [call.model_dump(exclude_none=True),
                    {"type": "function_call_output", "call_id": call.call_id, "output": "Snow, -3 °C"}]
        second = await respond(c, stream, model=model, input=history, tools=[WEATHER])
    assert second.output_text == "Tool result: Snow, -3 °C"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_json_schema_output(gateway: Gateway, model: str, stream: bool) -> None:
    async with client(gateway) as c:
        reply = await respond(c, stream, model=model, input="Largest city in Norway?",
                              text={"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}})
    assert set(json.loads(reply.output_text)) == {"city", "population"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4.5", "google/gemini-2.5-flash"])
async def test_reasoning_summary_and_its_replay(gateway: Gateway, model: str, stream: bool) -> None:
    history: list[Any] = [{"role": "user", "content": "Use get_weather for Oslo, then advise me."}]
    options: dict[str, Any] = {"model": model, "tools": [WEATHER], "include": ["reasoning.encrypted_content"],
                               "reasoning": {"effort": "high", "summary": "auto"}}
    async with client(gateway) as c:
        first = await respond(c, stream, input=history, **options)
        reasoning, call = first.output
        assert reasoning.type == "reasoning" and reasoning.summary[0].text
        assert reasoning.encrypted_content.startswith(SEAL)
        details = unseal_reasoning(reasoning.encrypted_content, "")
        assert "".join(d.get("text") or "" for d in details) == reasoning.summary[0].text
        # What the provider needs back: Anthropic's thinking signature, Gemini's thought signature.
        opaque = [d.get("signature") or d.get("data") for d in details if d.get("signature") or d.get("data")]
        assert opaque
        usage = first.usage
        assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
        history += [reasoning.model_dump(exclude_none=True), call.model_dump(exclude_none=True),
                    {"type": "function_call_output", "call_id": call.call_id, "output": "Snow"}]
        second = await respond(c, stream, input=history, **options)
    assert second.output[-1].content[0].text == "Tool result: Snow"
    # The signed reasoning went back to the provider with the assistant turn, byte for byte.
    sent = json.dumps(upstream(gateway))
    assert all(json.dumps(value) in sent for value in opaque)
    if model.startswith("anthropic/"):
        (detail,) = details
        assert upstream(gateway)["messages"][1]["content"][0] == {
            "type": "thinking", "thinking": detail["text"], "signature": detail["signature"]}


@pytest.mark.parametrize("model", MODELS)
async def test_reasoning_effort_reaches_every_format(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        reply = await c.responses.create(model=model, input="Think, then say hi",
                                         reasoning={"effort": "low", "summary": "auto"})
    assert reply.status == "completed" and reply.output_text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_image_input(gateway: Gateway, model: str, stream: bool) -> None:
    image = f"data:image/png;base64,{PIXEL}"
    async with client(gateway) as c:
        reply = await respond(c, stream, model=model, input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture?"},
            {"type": "input_image", "image_url": image, "detail": "low"}]}])
    assert reply.output_text
    assert PIXEL in json.dumps(upstream(gateway))


@pytest.mark.parametrize("stream", [False, True])
async def test_max_output_tokens_makes_an_incomplete_response(gateway: Gateway, stream: bool) -> None:
    options: dict[str, Any] = {"model": "openai/gpt-4o", "input": "Tell me a long story", "max_output_tokens": 16}
    async with client(gateway) as c:
        if stream:
            async with c.responses.stream(**options) as events:
                last = [event async for event in events][-1]
            assert last.type == "response.incomplete"
            reply = last.response
        else:
            reply = await c.responses.create(**options)
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
    assert upstream(gateway)["max_tokens"] == 16


@pytest.mark.parametrize(("body", "param"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"temperature": 3}, "temperature"),
])
async def test_errors_are_in_openais_envelope(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(**{"model": "openai/gpt-4o", "input": "x", **body})
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param and error["code"] == "invalid_prompt" and error["type"] == "invalid_request"
    assert error["message"].startswith(param)
    if param == "previous_response_id":
        assert "stateless" in error["message"]


async def test_wrong_key_and_unknown_model(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.url, api_key="sk-wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            await c.responses.create(model="openai/gpt-4o", input="x")
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="nobody/nothing"):
            await c.responses.create(model="nobody/nothing", input="x")


async def test_the_generation_is_recorded(gateway: Gateway) -> None:
    async with client(gateway) as c:
        raw = await c.responses.with_raw_response.create(model="openai/gpt-4o", input="Hi")
    reply = raw.parse()
    assert raw.headers["X-Generation-Id"] == reply.id
    await gateway.services.ledger.flush()
    async with aiohttp.ClientSession() as session, session.get(
            f"{gateway.url}/generation", params={"id": reply.id}, headers=gateway.auth) as got:
        data = (await got.json())["data"]
    assert data["tokens_prompt"] == reply.usage.input_tokens
    assert data["tokens_completion"] == reply.usage.output_tokens


async def test_fallback_before_the_first_byte_and_failed_after_it(start_gateway: GatewayFactory,
                                                                  sim: SimServer) -> None:
    catalog = upstream_catalog(sim.url, {
        "test/fallback": [{"provider": "alpha", "upstream_model": "m#status=503"},
                          {"provider": "beta", "upstream_model": "m", "prompt": "5"}],
        "test/drop": [{"provider": "alpha", "upstream_model": "m#drop_after=3;tokens=20"}]})
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, client(gw) as c:
        reply = await respond(c, True, model="test/fallback", input="x", extra_body={"provider": {"order": ["alpha"]}})
        assert reply.status == "completed" and reply.output_text
        async with c.responses.stream(model="test/drop", input="x") as events:
            seen = [event async for event in events]
    types = [event.type for event in seen]
    assert "response.output_text.delta" in types and types[-1] == "response.failed"
    failed = seen[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.output == []
    assert [event.sequence_number for event in seen] == list(range(len(seen)))


@pytest.mark.parametrize("stream", [False, True])
async def test_excluded_reasoning_keeps_only_what_shows_nothing(gateway: Gateway, stream: bool) -> None:
    async with client(gateway) as c:
        reply = await respond(c, stream, model="anthropic/claude-sonnet-4.5", input="Use get_weather for Oslo.",
                              tools=[WEATHER], reasoning={"effort": "high"}, extra_body={"reasoning": {
                                  "effort": "high", "exclude": True}})
    reasoning = reply.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary == []
    details = unseal_reasoning(reasoning.encrypted_content, "")
    assert details and all(not d.get("text") for d in details) and details[0]["signature"]
