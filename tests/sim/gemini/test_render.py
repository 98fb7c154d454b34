"""Gemini simulator: the response body and the stream (SSE or a JSON array), as the official `google-genai`
SDK and the wire format expect them, and how a stream fails or is paced under directives."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors, types

from crossroads.sim import SimServer
from crossroads.sim.reply import count_tokens

from .support import MODEL, PATH, STREAM_PATH, USER, generate, post, sse_events, text_of

# google-genai subclasses aiohttp's ClientSession for its async transport, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


async def test_plain_reply(gemini: genai.client.AsyncClient, sim: SimServer, http: aiohttp.ClientSession) -> None:
    response = await gemini.models.generate_content(model=MODEL, contents="Tell me something about rivers.")
    candidate = response.candidates[0]  # type: ignore[index]
    assert candidate.finish_reason == types.FinishReason.STOP and candidate.index == 0
    assert candidate.content.role == "model"  # type: ignore[union-attr]
    text = text_of(response)
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == count_tokens("Tell me something about rivers.")
    assert usage.candidates_token_count == count_tokens(text) and 8 <= count_tokens(text) <= 40
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert usage.thoughts_token_count is None and usage.cached_content_token_count is None
    assert response.model_version == MODEL and response.response_id
    recorded = sim.requests[-1]
    assert recorded.path == PATH and recorded.headers["x-goog-api-key"] == "sim-key"
    assert recorded.body == {"contents": USER}

    status, headers, raw = await post(http, {"contents": USER})
    assert status == 200 and headers["Content-Type"] == "application/json; charset=UTF-8"
    body = orjson.loads(raw)
    types.GenerateContentResponse.model_validate(body)  # the SDK's schema forbids unknown fields
    assert body["candidates"][0]["content"]["parts"] == [{"text": text}]  # the same conversation, the same reply


async def test_stream(gemini: genai.client.AsyncClient, http: aiohttp.ClientSession) -> None:
    whole = text_of(await gemini.models.generate_content(model=MODEL, contents="Tell me something about rivers."))
    chunks = [c async for c in await gemini.models.generate_content_stream(
        model=MODEL, contents="Tell me something about rivers.")]
    assert "".join(text_of(chunk) for chunk in chunks) == whole
    assert [c.candidates[0].finish_reason for c in chunks if c.candidates[0].finish_reason] == [  # type: ignore[index]
        types.FinishReason.STOP]
    assert chunks[-1].usage_metadata.candidates_token_count == count_tokens(whole)  # type: ignore[union-attr]

    status, headers, raw = await post(http, {"contents": USER}, STREAM_PATH + "?alt=sse")
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse_events(raw)
    for event in events:
        types.GenerateContentResponse.model_validate(event)
    assert len(events) == count_tokens(whole) + 1  # one token per event, then the finish event
    assert len({event["responseId"] for event in events}) == 1


async def test_stream_without_alt_sse_is_a_json_array(http: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(http, {"contents": USER}, STREAM_PATH)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    events = orjson.loads(raw)
    assert isinstance(events, list) and events[-1]["candidates"][0]["finishReason"] == "STOP"
    for event in events:
        types.GenerateContentResponse.model_validate(event)


async def test_the_stable_v1_path_and_snake_case_fields(gemini: genai.client.AsyncClient, sim: SimServer,
                                                        http: aiohttp.ClientSession) -> None:
    status, _, raw = await post(http, {"contents": USER, "generation_config": {"max_output_tokens": 3,
                                                                               "thinking_config": {"include_thoughts":
                                                                                                   False}}},
                                f"/v1/models/{MODEL}:generateContent")
    assert status == 200 and orjson.loads(raw)["candidates"][0]["finishReason"] == "MAX_TOKENS"
    default = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim.url))  # the SDK's default: v1
    response = await default.aio.models.generate_content(model=MODEL, contents="hi")
    assert text_of(response) and sim.requests[-1].path == f"/v1/models/{MODEL}:generateContent"
    await default.aio.aclose()


async def test_stream_failures(gemini: genai.client.AsyncClient, sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_behaviour(MODEL, "error_after=2;tokens=10")
    received: list[str] = []
    with pytest.raises(errors.ServerError) as caught:
        await generate(gemini, True, received, model=MODEL, contents="x")
    assert len(received) == 2 and caught.value.status == "INTERNAL"
    _, _, raw = await post(http, {"contents": USER}, STREAM_PATH + "?alt=sse")
    assert sse_events(raw)[-1] == {"error": {"code": 500, "message": caught.value.message, "status": "INTERNAL"}}
    _, _, raw = await post(http, {"contents": USER}, STREAM_PATH)
    assert orjson.loads(raw)[-1]["error"]["status"] == "INTERNAL"  # still a valid JSON array

    sim.set_behaviour(MODEL, "malformed;tokens=10")
    with pytest.raises(errors.UnknownApiResponseError):
        await generate(gemini, True, model=MODEL, contents="x")
    sim.set_behaviour(MODEL, "drop_after=1;tokens=10")
    with pytest.raises(aiohttp.ClientPayloadError):
        await generate(gemini, True, model=MODEL, contents="x")
    await sim.wait_idle()
    assert sim.stats["dropped"] == 1


async def test_timing_directives(gemini: genai.client.AsyncClient, sim: SimServer) -> None:
    loop = asyncio.get_running_loop()
    sim.set_behaviour(MODEL, "ttft=150;tokens=5")
    started = loop.time()
    stream = await gemini.models.generate_content_stream(model=MODEL, contents="x")
    await anext(stream)
    assert loop.time() - started >= 0.15
    _ = [chunk async for chunk in stream]
    sim.set_behaviour(MODEL, "tokens=10;tps=100")
    started = loop.time()
    await gemini.models.generate_content(model=MODEL, contents="x")
    assert loop.time() - started >= 0.1
    sim.set_behaviour(MODEL, "hang")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await gemini.models.generate_content(model=MODEL, contents="x")
    stats = await sim.wait_idle()
    assert stats["cancelled"] == 1 and stats["in_flight"] == 0
