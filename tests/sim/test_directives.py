"""Behaviour directives over the wire: failures, timing, disconnects, sources and their precedence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable

import aiohttp
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from crossroads.sim import DirectiveError, SimServer
from crossroads.sim.reply import count_tokens

from .support import USER, chat, post_chat, sse_payloads

NOT_JSON = r"Expecting|Unterminated|delimiter"


async def drain(stream: AsyncIterable[ChatCompletionChunk], into: list[ChatCompletionChunk]) -> None:
    """Collect a stream's chunks into `into` (which keeps them when the stream raises)."""
    async for chunk in stream:
        into.append(chunk)


STATUS_ERRORS: list[tuple[int, type[openai.APIStatusError], str, str | None]] = [
    (400, openai.BadRequestError, "invalid_request_error", None),
    (401, openai.AuthenticationError, "invalid_request_error", "invalid_api_key"),
    (403, openai.PermissionDeniedError, "request_forbidden", "unsupported_country_region_territory"),
    (404, openai.NotFoundError, "invalid_request_error", "model_not_found"),
    (409, openai.ConflictError, "invalid_request_error", None),
    (422, openai.UnprocessableEntityError, "invalid_request_error", None),
    (429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
    (500, openai.InternalServerError, "server_error", None),
    (502, openai.InternalServerError, "server_error", None),
    (503, openai.InternalServerError, "server_error", None),
    (504, openai.InternalServerError, "server_error", "timeout"),
]


@pytest.mark.parametrize(("status", "exception", "type_", "code"), STATUS_ERRORS)
async def test_status(
    client: openai.AsyncOpenAI, status: int, exception: type[openai.APIStatusError], type_: str, code: str | None
) -> None:
    for stream in (False, True):
        with pytest.raises(exception) as caught:
            await client.chat.completions.create(model=f"gpt-4o#status={status}", messages=USER, stream=stream)
        error = caught.value
        assert error.status_code == status
        assert error.type == type_
        assert error.code == code
        assert isinstance(error.body, dict)
        assert set(error.body) == {"message", "type", "param", "code"}
        assert error.body["param"] is None
        assert error.response.headers["content-type"] == "application/json"
    if status == 404:
        assert "`gpt-4o`" in error.message


async def test_rate_limit_headers(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4o#status=429;retry_after=2", messages=USER)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "2s"
    assert "try again in 2s" in caught.value.message

    with pytest.raises(openai.InternalServerError) as caught_503:
        await client.chat.completions.create(model="gpt-4o#status=503;retry_after=0.5", messages=USER)
    assert caught_503.value.response.headers["retry-after"] == "0.5"
    assert "x-ratelimit-remaining-requests" not in caught_503.value.response.headers


async def test_status_200_means_success(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    sim.set_behaviour("gpt-4o", "status=500")
    completion = await client.chat.completions.create(model="gpt-4o#status=200", messages=USER)
    assert completion.choices[0].message.content


async def test_drop_after_stream(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    stream = await client.chat.completions.create(model="gpt-4o#tokens=20;drop_after=3", messages=USER, stream=True)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIConnectionError):
        await drain(stream, received)
    contents = [chunk for chunk in received if chunk.choices and chunk.choices[0].delta.content]
    assert len(contents) == 3
    assert all(chunk.choices[0].finish_reason is None for chunk in received)
    stats = await sim.wait_idle()
    assert stats["dropped"] == 1
    assert stats["cancelled"] == 0


async def test_drop_after_raw(http: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await post_chat(http, chat(model="gpt-4o#drop_after=2", stream=True))


async def test_drop_after_non_stream(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o#drop_after=0", messages=USER)
    assert (await sim.wait_idle())["dropped"] == 1


async def test_malformed(client: openai.AsyncOpenAI, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match=NOT_JSON):
        await client.chat.completions.create(model="gpt-4o#malformed", messages=USER)

    status, headers, raw = await post_chat(http, chat(model="gpt-4o#malformed"))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)

    stream = await client.chat.completions.create(model="gpt-4o#malformed", messages=USER, stream=True)
    received = []
    with pytest.raises(ValueError, match=NOT_JSON):
        await drain(stream, received)
    assert received[0].choices[0].delta.content == ""
    assert len(received) == 2

    status, _, raw = await post_chat(http, chat(model="gpt-4o#malformed;tokens=3", stream=True))
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    broken = []
    for payload in payloads[:-1]:
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError:
            broken.append(payload)
    assert len(broken) == 1
    assert payloads.index(broken[0]) == 2


async def test_error_after(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="gpt-4o#error_after=2", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        await drain(stream, received)
    assert len(received) == 3
    assert caught.value.type == "server_error"
    assert "The server had an error" in caught.value.message

    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o#error_after=2", messages=USER)


async def test_hang_times_out_and_counts_as_cancelled(sim: SimServer) -> None:
    impatient = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=0, timeout=0.3)
    try:
        for stream in (False, True):
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await impatient.chat.completions.create(model="gpt-4o#hang", messages=USER, stream=stream)
            assert time.monotonic() - started < 3
    finally:
        await impatient.close()
    stats = await sim.wait_until(lambda stats: stats["cancelled"] == 2 and stats["in_flight"] == 0)
    assert stats["completed"] == 0


async def test_disconnect_mid_stream_counts_as_cancelled(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=200;tps=100",
        messages=USER,
        stream=True,
    )
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.close()
    stats = await sim.wait_until(lambda stats: stats["cancelled"] == 1)
    assert stats == {"requests": 1, "completed": 0, "cancelled": 1, "dropped": 0, "in_flight": 0}


async def test_fail_first(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    sim.set_behaviour("gpt-4o", "fail_first=2")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=USER)
        assert caught.value.status_code == 503
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices

    sim.set_behaviour("gpt-4o", "fail_first=1;status=429")  # a new installation counts afresh
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices

    # From the model name: counted per distinct model string.
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="other#fail_first=1", messages=USER)
    assert (await client.chat.completions.create(model="other#fail_first=1", messages=USER)).choices


async def test_fail_first_counts_only_valid_requests(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    sim.set_behaviour("gpt-4o", "fail_first=1")
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-4o", messages=USER, temperature=5)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices


async def test_fail_first_with_sdk_retries(sim: SimServer) -> None:
    patient = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=1)
    try:
        completion = await patient.chat.completions.create(
            model="gpt-4o#fail_first=1;status=429;retry_after=0.05",
            messages=USER,
        )
    finally:
        await patient.close()
    assert completion.choices[0].message.content
    assert sim.stats["requests"] == 2


async def test_latency(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    await client.chat.completions.create(model="gpt-4o#latency=300", messages=USER)
    assert 0.28 <= time.monotonic() - started < 5

    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o#latency=200;status=500", messages=USER)
    assert 0.18 <= time.monotonic() - started < 5

    started = time.monotonic()
    await client.chat.completions.create(model="gpt-4o#ttft=250", messages=USER)
    assert 0.23 <= time.monotonic() - started < 5


async def test_ttft_is_silence_after_headers(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await client.chat.completions.create(model="gpt-4o#ttft=400;tokens=5", messages=USER, stream=True)
    headers_at = time.monotonic() - started
    first_at = None
    async for chunk in stream:
        if first_at is None:
            first_at = time.monotonic() - started
            assert chunk.choices[0].delta.role == "assistant"
    assert first_at is not None
    assert headers_at < 0.3
    assert 0.38 <= first_at < 5


async def test_tps(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    completion = await client.chat.completions.create(model="gpt-4o#tokens=20;tps=100", messages=USER)
    assert 0.18 <= time.monotonic() - started < 5
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20

    started = time.monotonic()
    stream = await client.chat.completions.create(model="gpt-4o#tokens=21;tps=100", messages=USER, stream=True)
    arrivals = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 21
    # Measured from the request, not between chunks: a busy client may read a late first chunk with the next.
    assert 0.18 <= arrivals[-1] - started < 5


async def test_reasoning_delays_first_chunk(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="gpt-4o#tokens=2;reasoning=20;tps=100", messages=USER, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert 0.18 <= time.monotonic() - started < 5
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


async def test_default_is_fast(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    for _ in range(20):
        stream = await client.chat.completions.create(model="gpt-4o#tokens=40", messages=USER, stream=True)
        async for _chunk in stream:
            pass
    assert time.monotonic() - started < 2


async def test_precedence(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    sim.set_behaviour("gpt-4o", "tokens=5;status=503")

    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)

    by_model = await client.chat.completions.create(model="gpt-4o#status=200", messages=USER)
    assert by_model.usage is not None
    assert by_model.usage.completion_tokens == 5

    by_header = await client.chat.completions.create(
        model="gpt-4o#status=200;tokens=6",
        messages=USER,
        extra_headers={"X-Sim-Behaviour": "tokens=7"},
    )
    assert by_header.usage is not None
    assert by_header.usage.completion_tokens == 7

    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="gpt-4o#status=200",
            messages=USER,
            extra_headers={"X-Sim-Behaviour": "status=429"},
        )

    header_only = await client.chat.completions.create(
        model="plain-model", messages=USER, extra_headers={"x-sim-behaviour": "tokens=3"}
    )
    assert count_tokens(header_only.choices[0].message.content or "") == 3

    sim.clear_behaviour("gpt-4o")
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices


async def test_bad_directives_are_400s(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o#ttfb=3", messages=USER)
    assert caught.value.param == "model"
    assert caught.value.code == "invalid_sim_directive"
    assert "'ttfb=3'" in caught.value.message

    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=USER, extra_headers={"X-Sim-Behaviour": "tps=-1"})
    assert caught.value.param == "X-Sim-Behaviour"
    assert "'tps=-1'" in caught.value.message

    with pytest.raises(DirectiveError):
        sim.set_behaviour("gpt-4o", "status=abc")
    assert sim.behaviours == {}
