"""One contract every adapter passes, end to end: an `openai` SDK client → Crossroads → the adapter → the
simulator speaking that provider's wire format, and back.

A new wire format joins by adding one `WireCase` to `CASES`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import openai
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory


@dataclass(frozen=True)
class WireCase:
    wire_format: str
    #: The provider's base URL, given the simulator's root URL (each SDK convention differs).
    base_url: Callable[[str], str]
    #: The upstream model id the simulator is asked for.
    upstream_model: str
    quirks: str = "generic"
    reasoning: bool = False
    #: Whether replies carry something opaque the client must send back with the reasoning (a signature,
    #: encrypted data) in `reasoning_details`.
    opaque_reasoning: bool = False
    #: The test id, where one wire format has several cases.
    name: str | None = None

    def catalog(self, sim_url: str, directives: tuple[str, str] = ("", "")) -> str:
        """Two providers of this wire format (`first`, cheaper, and `second`) serving `contract/model`."""
        lines = []
        for slug in ("first", "second"):
            lines += [f"[providers.{slug}]", f'name = "{slug.title()}"', f'wire_format = "{self.wire_format}"',
                      f'base_url = "{self.base_url(sim_url)}"', f'api_key_env = "{slug.upper()}_KEY"',
                      f'quirks = "{self.quirks}"', ""]
        lines += ['[models."contract/model"]', 'name = "Contract model"', "context_length = 100000",
                  'input_modalities = ["text", "image", "file"]',
                  "features = { tools = true, response_format = true, structured_outputs = true }"]
        if self.reasoning:
            lines.append('reasoning = { supported_efforts = ["low", "medium", "high"], supports_max_tokens = true }')
        for slug, price, directive in (("first", "1", directives[0]), ("second", "3", directives[1])):
            model = self.upstream_model + (f"#{directive}" if directive else "")
            lines += ['[[models."contract/model".endpoints]]', f'provider = "{slug}"', f'upstream_model = "{model}"',
                      "max_completion_tokens = 8192",
                      f'pricing = {{ prompt = "{price}", completion = "{int(price) * 4}" }}']
        return "\n".join(lines)


CASES = [
    WireCase("openai_chat", lambda root: f"{root}/v1", "gpt-4o-mini", quirks="openai", reasoning=True),
    WireCase("anthropic_messages", lambda root: root, "claude-sonnet-4-5", reasoning=True, opaque_reasoning=True),
    WireCase("gemini", lambda root: root, "gemini-2.5-flash", reasoning=True, opaque_reasoning=True),
    # The clouds, each with a key (Bedrock's API key, a fixed Vertex access token, Azure's api-key); the
    # credential chains that sign otherwise are tested against fakes in tests/api/test_cloud_e2e.py.
    WireCase("bedrock", lambda root: root, "us.anthropic.claude-sonnet-4-5-v1:0", reasoning=True,
             opaque_reasoning=True),
    WireCase("bedrock", lambda root: root, "us.meta.llama3-3-70b-instruct-v1:0", name="bedrock-converse"),
    WireCase("vertex", lambda root: f"{root}/v1/projects/p/locations/l", "anthropic/claude-sonnet-4-5@20250929",
             reasoning=True, opaque_reasoning=True, name="vertex-anthropic"),
    WireCase("vertex", lambda root: f"{root}/v1/projects/p/locations/l", "google/gemini-2.5-flash",
             reasoning=True, opaque_reasoning=True, name="vertex-gemini"),
    WireCase("azure_openai", lambda root: root, "gpt-4o-mini", quirks="openai", reasoning=True),
]

KEYS = {"FIRST_KEY": "first-secret", "SECOND_KEY": "second-secret"}
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PNG = ("data:image/png;base64,"
       "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


@pytest.fixture(params=CASES, ids=lambda case: case.name or case.wire_format)
def case(request: pytest.FixtureRequest) -> WireCase:
    value: WireCase = request.param
    return value


@pytest.fixture
def serve(start_gateway: GatewayFactory, sim: SimServer, case: WireCase) \
        -> Callable[..., Any]:
    def start(first: str = "", second: str = "") -> Any:
        return start_gateway(env=KEYS, catalog=case.catalog(sim.url, (first, second)), simulator="off")
    return start


@pytest.fixture
async def gw(serve: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with serve() as gateway:
        yield gateway


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


FIRST = {"provider": {"order": ["first"]}}


async def test_plain_reply_usage_and_cost(gw: Gateway) -> None:
    async with client(gw) as c:
        completion = await c.chat.completions.create(
            model="contract/model", extra_body=FIRST,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}])
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    expected = (Decimal(usage.prompt_tokens) * Decimal("0.000001")
                + Decimal(usage.completion_tokens) * Decimal("0.000004"))
    assert Decimal(str((usage.model_extra or {})["cost"])) == expected
    assert (completion.model_extra or {})["provider"] == "First"


async def test_stream(gw: Gateway) -> None:
    async with client(gw) as c:
        stream = await c.chat.completions.create(model="contract/model", stream=True, extra_body=FIRST,
                                                 messages=[{"role": "user", "content": "Tell me something"}])
        chunks = [chunk async for chunk in stream]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(gw: Gateway, stream: bool) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]
    async with client(gw) as c:
        call_id, name, arguments = await _tool_call(c, messages, stream)
        assert name == "get_weather" and "city" in json.loads(arguments)
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "Sunny, 21 degrees"})
        final = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                tools=[TOOL], extra_body=FIRST)  # type: ignore[list-item]
    assert "Sunny, 21 degrees" in (final.choices[0].message.content or "")


async def _tool_call(c: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool) -> tuple[str, str, str]:
    if not stream:
        reply = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                tools=[TOOL], tool_choice="required",  # type: ignore[list-item]
                                                extra_body=FIRST)
        assert reply.choices[0].finish_reason == "tool_calls"
        call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        return call.id, call.function.name, call.function.arguments  # type: ignore[union-attr]
    chunks = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                             tools=[TOOL], tool_choice="required",  # type: ignore[list-item]
                                             extra_body=FIRST, stream=True)
    call_id = name = ""
    arguments = ""
    finish = None
    async for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call_id = delta.id or call_id
                if delta.function is not None:
                    name = delta.function.name or name
                    arguments += delta.function.arguments or ""
    assert finish == "tool_calls"
    return call_id, name, arguments


async def test_structured_output(gw: Gateway) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    async with client(gw) as c:
        reply = await c.chat.completions.create(
            model="contract/model", extra_body=FIRST, messages=[{"role": "user", "content": "Largest city?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    data = json.loads(reply.choices[0].message.content or "")
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


async def test_image_input(gw: Gateway, sim: SimServer) -> None:
    async with client(gw) as c:
        reply = await c.chat.completions.create(model="contract/model", extra_body=FIRST, messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": PNG}}]}])
    assert reply.choices[0].message.content
    assert "iVBORw0KGgo" in json.dumps(sim.requests[-1].body)  # the image reached the provider


@pytest.mark.parametrize(("directive", "status"), [
    ("status=400", 400), ("status=401", 502), ("status=404", 404), ("status=429", 429),
    ("status=500", 503), ("status=503", 503),
])
async def test_each_error_status(serve: Callable[..., Any], directive: str, status: int) -> None:
    async with serve(directive, directive) as gw, client(gw) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model="contract/model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.body["code"] == status  # type: ignore[index]


async def test_rate_limited_provider_falls_back(serve: Callable[..., Any]) -> None:
    async with serve("status=429;retry_after=3") as gw, client(gw) as c:
        reply = await c.chat.completions.create(model="contract/model", extra_body=FIRST,
                                                messages=[{"role": "user", "content": "x"}])
    assert (reply.model_extra or {})["provider"] == "Second"


async def test_drop_mid_stream_becomes_in_band_error(serve: Callable[..., Any]) -> None:
    async with serve("drop_after=2;tokens=30") as gw, client(gw) as c:
        stream = await c.chat.completions.create(model="contract/model", stream=True, extra_body=FIRST,
                                                 messages=[{"role": "user", "content": "x"}])
        received: list[Any] = []

        async def consume() -> None:
            async for chunk in stream:
                received.append(chunk)

        with pytest.raises(openai.APIError):
            await consume()
    assert received and all((ch.model_extra or {})["provider"] == "First" for ch in received)


async def test_error_event_mid_stream_becomes_in_band_error(serve: Callable[..., Any]) -> None:
    # Paced, so the error arrives after the gateway has committed to the stream (else it falls back).
    async with serve("error_after=2;tokens=30;tps=100") as gw, client(gw) as c:
        stream = await c.chat.completions.create(model="contract/model", stream=True, extra_body=FIRST,
                                                 messages=[{"role": "user", "content": "x"}])
        received: list[Any] = []

        async def consume() -> None:
            async for chunk in stream:
                received.append(chunk)

        with pytest.raises(openai.APIError) as caught:
            await consume()
    assert "".join(ch.choices[0].delta.content or "" for ch in received if ch.choices)
    assert all((ch.model_extra or {})["provider"] == "First" for ch in received)
    assert caught.value.body is not None


@pytest.mark.parametrize("directive", ["drop_after=2;tokens=30", "error_after=2;tokens=30;tps=100"])
async def test_mid_stream_failure_ends_with_an_error_chunk_then_done(serve: Callable[..., Any],
                                                                    directive: str) -> None:
    """On the wire, past the SDK: once streaming, a failure is one last chunk carrying `error` and
    `finish_reason: "error"`, and the stream still ends with `data: [DONE]`."""
    body = {**FIRST, "model": "contract/model", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with serve(directive) as gw, aiohttp.ClientSession(headers=gw.auth) as http, \
            http.post(f"{gw.url}/chat/completions", json=body) as response:
        assert response.status == 200
        raw = (await response.read()).decode()
    payloads = [line[6:] for line in raw.split("\n") if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    assert "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "error"
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"][0]["finish_reason"]] == ["error"]
    error = last["error"]
    assert error["code"] == 502 if directive.startswith("drop") else 500 <= error["code"] < 600
    assert isinstance(error["message"], str) and error["message"]
    assert {ch["id"] for ch in chunks} == {last["id"]} and {ch["provider"] for ch in chunks} == {"First"}


TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.mark.parametrize("stream", [False, True])
async def test_multi_turn_tool_conversation(gw: Gateway, stream: bool) -> None:
    """Two rounds of tool use, the first with parallel calls, each answered and then quoted back."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "In Paris: call get_weather and get_time."}]
    async with client(gw) as c:
        calls = await _calls(c, messages, stream)
        assert sorted(call["function"]["name"] for call in calls) == ["get_time", "get_weather"]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        for call in calls:
            result = "Sunny" if call["function"]["name"] == "get_weather" else "10:00"
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        answer = await _answer(c, messages, stream)
        assert "Sunny" in answer and "10:00" in answer
        messages += [{"role": "assistant", "content": answer},
                     {"role": "user", "content": "And Rome? Only get_weather this time."}]
        calls = await _calls(c, messages, stream)
        assert [call["function"]["name"] for call in calls] == ["get_weather"]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "Rainy"})
        assert "Rainy" in await _answer(c, messages, stream)


async def _calls(c: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"model": "contract/model", "messages": messages, "tools": [TOOL, TIME_TOOL],
                              "extra_body": FIRST}
    if not stream:
        reply = await c.chat.completions.create(**kwargs)
        assert reply.choices[0].finish_reason == "tool_calls"
        return [call.model_dump(include={"id", "type", "function"})
                for call in reply.choices[0].message.tool_calls or ()]
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    async for chunk in await c.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "type": "function",
                                                      "function": {"name": "", "arguments": ""}})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["function"]["name"] = delta.function.name or call["function"]["name"]
                    call["function"]["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    for call in calls.values():
        assert call["id"] and isinstance(json.loads(call["function"]["arguments"]), dict)
    return [calls[index] for index in sorted(calls)]


async def _answer(c: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool) -> str:
    kwargs: dict[str, Any] = {"model": "contract/model", "messages": messages, "tools": [TOOL, TIME_TOOL],
                              "extra_body": FIRST}
    if not stream:
        reply = await c.chat.completions.create(**kwargs)
        assert reply.choices[0].finish_reason == "stop"
        return reply.choices[0].message.content or ""
    chunks = [chunk async for chunk in await c.chat.completions.create(stream=True, **kwargs)]
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_prompt_tokens_are_part_of_the_prompt(serve: Callable[..., Any], stream: bool) -> None:
    messages = [{"role": "user", "content": "Summarise the history of bridges in a few words."}]
    async with serve("cached=6") as cached_gw, serve() as plain_gw:
        usages = []
        for gateway in (cached_gw, plain_gw):
            async with client(gateway) as c:
                if stream:
                    chunks = [ch async for ch in await c.chat.completions.create(
                        model="contract/model", messages=messages, extra_body=FIRST, stream=True)]  # type: ignore[arg-type]
                    usages.append(chunks[-1].usage)
                else:
                    reply = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                            extra_body=FIRST)
                    usages.append(reply.usage)
    cached, plain = usages
    assert cached is not None and plain is not None
    assert cached.prompt_tokens_details is not None and cached.prompt_tokens_details.cached_tokens == 6
    assert cached.prompt_tokens == plain.prompt_tokens > 6  # the total, cached tokens included


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_comes_back_and_goes_back(gw: Gateway, case: WireCase, stream: bool) -> None:
    if not case.reasoning:
        pytest.skip(f"{case.upstream_model} ({case.name or case.wire_format}) is not a reasoning model")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Think, then call get_weather for Oslo."}]
    body = {**FIRST, "reasoning": {"effort": "low"}}
    async with client(gw) as c:
        if stream:
            chunks = [ch async for ch in await c.chat.completions.create(
                model="contract/model", messages=messages, tools=[TOOL], extra_body=body, stream=True)]  # type: ignore[arg-type,list-item]
            deltas = [(ch.choices[0].delta.model_extra or {}) for ch in chunks if ch.choices]
            reasoning = "".join(d.get("reasoning") or "" for d in deltas)
            details = [detail for d in deltas for detail in d.get("reasoning_details") or ()]
            calls = [call for ch in chunks if ch.choices for call in ch.choices[0].delta.tool_calls or ()]
            call_id, name = calls[0].id, calls[0].function.name  # type: ignore[union-attr]
            arguments = "".join(call.function.arguments or "" for call in calls if call.function)
            usage = chunks[-1].usage
        else:
            reply = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                    tools=[TOOL], extra_body=body)  # type: ignore[list-item]
            extra = reply.choices[0].message.model_extra or {}
            reasoning, details = extra["reasoning"], extra.get("reasoning_details") or []
            call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
            call_id, name, arguments = call.id, call.function.name, call.function.arguments  # type: ignore[union-attr]
            usage = reply.usage
        # Something opaque to send back: a signed text block (Anthropic) or an encrypted blob (Gemini); the
        # OpenAI format's `reasoning_content` is plain text.
        opaque = [d for d in details if d.get("signature") or d.get("type") == "reasoning.encrypted"]
        assert reasoning and bool(opaque) == case.opaque_reasoning
        assert usage is not None and usage.completion_tokens_details is not None
        assert 0 < (usage.completion_tokens_details.reasoning_tokens or 0) < usage.completion_tokens
        if stream:  # the client reassembles streamed details by index, as OpenRouter's docs describe
            merged: dict[int, dict[str, Any]] = {}
            for detail in details:
                entry = merged.setdefault(detail["index"], {**detail, "text": ""})
                entry["text"] += detail.get("text") or ""
                entry["signature"] = detail.get("signature") or entry.get("signature")
            details = list(merged.values())
        messages.append({"role": "assistant", "content": None, "reasoning_details": details, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "Snow"})
        final = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                tools=[TOOL], extra_body=body)  # type: ignore[list-item]
    assert "Snow" in (final.choices[0].message.content or "")
    assert (final.choices[0].message.model_extra or {})["reasoning"]  # thinking stayed on in the tool loop


@pytest.mark.parametrize("stream", [False, True])
async def test_excluded_reasoning_is_used_but_not_returned(gw: Gateway, case: WireCase, stream: bool) -> None:
    if not case.reasoning:
        pytest.skip(f"{case.upstream_model} ({case.name or case.wire_format}) is not a reasoning model")
    body = {**FIRST, "reasoning": {"effort": "low", "exclude": True}}
    messages = [{"role": "user", "content": "Think, then answer: what is 6 times 7?"}]
    async with client(gw) as c:
        if stream:
            chunks = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                     extra_body=body, stream=True)
            deltas = [ch.choices[0].delta.model_dump() async for ch in chunks if ch.choices]
            assert not any(d.get("reasoning") for d in deltas)
            assert not any(_readable(d.get("reasoning_details")) for d in deltas)
            assert "".join(d.get("content") or "" for d in deltas)
        else:
            reply = await c.chat.completions.create(model="contract/model", messages=messages,  # type: ignore[arg-type]
                                                    extra_body=body)
            extra = reply.choices[0].message.model_extra or {}
            assert not extra.get("reasoning") and not _readable(extra.get("reasoning_details"))
            assert reply.choices[0].message.content


def _readable(details: list[dict[str, Any]] | None) -> list[str]:
    """The human-readable reasoning in `reasoning_details` (opaque signatures and encrypted data aside)."""
    return [d.get("text") or d.get("summary") for d in details or () if d.get("text") or d.get("summary")]
