"""The Gemini wire format: every reply, stream and error must parse with the official `google-genai` SDK, and
requests the real API would refuse are refused the same way."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import jsonschema
import orjson
import pytest
from google import genai
from google.genai import errors, types

from crossroads.sim import SimServer
from crossroads.sim.gemini import TOKENS_PER_MEDIA, count_prompt_tokens
from crossroads.sim.reply import count_tokens

# google-genai subclasses aiohttp's ClientSession for its async transport, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

MODEL = "gemini-2.5-flash"
KEY = {"x-goog-api-key": "sim-key"}
USER = [{"role": "user", "parts": [{"text": "Tell me something about rivers."}]}]
PATH = f"/v1beta/models/{MODEL}:generateContent"
STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent"
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city.",
    parameters=types.Schema(type=types.Type.OBJECT, required=["city"], properties={
        "city": types.Schema(type=types.Type.STRING),
        "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"]),
        "days": types.Schema(type=types.Type.INTEGER, minimum=1, maximum=7)}))
TIME = types.FunctionDeclaration(name="get_time", parameters_json_schema={
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]})
WEATHER_JSON_SCHEMA = {"type": "object", "required": ["city"], "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 7}}}


@pytest.fixture
async def gemini(sim: SimServer) -> AsyncIterator[genai.client.AsyncClient]:
    client = genai.Client(api_key="sim-key", http_options=types.HttpOptions(base_url=sim.url, api_version="v1beta"))
    yield client.aio
    await client.aio.aclose()


async def post(http: aiohttp.ClientSession, body: Any, path: str = PATH, headers: dict[str, str] | None = None) \
        -> tuple[int, Mapping[str, str], bytes]:
    """POST raw JSON; returns (status, headers (case-insensitive), body)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.post(path, data=data, headers=KEY if headers is None else headers) as response:
        return response.status, response.headers.copy(), await response.read()


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of a Gemini SSE body, checking each event is exactly `data: ...\\r\\n\\r\\n`."""
    assert raw.endswith(b"\r\n\r\n")
    events = []
    for event in raw.split(b"\r\n\r\n")[:-1]:
        assert event.startswith(b"data: ") and b"\n" not in event, event
        events.append(orjson.loads(event[len(b"data: "):]))
    return events


async def generate(client: genai.client.AsyncClient, stream: bool, into: list[str] | None = None, **kwargs: Any) \
        -> None:
    """Generate, streamed or not, collecting the text of each response (kept when it raises) into `into`."""
    if not stream:
        response = await client.models.generate_content(**kwargs)
        if into is not None:
            into.append(text_of(response))
        return
    async for chunk in await client.models.generate_content_stream(**kwargs):
        if into is not None:
            into.append(text_of(chunk))


def text_of(response: types.GenerateContentResponse) -> str:
    parts = response.candidates[0].content.parts if response.candidates and response.candidates[0].content else None
    return "".join(part.text or "" for part in parts or () if not part.thought)


# -- replies ---------------------------------------------------------------------------------------------------


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


# -- function calling ------------------------------------------------------------------------------------------


def _calls(response: types.GenerateContentResponse) -> list[types.FunctionCall]:
    parts = response.candidates[0].content.parts or []  # type: ignore[index,union-attr]
    return [part.function_call for part in parts if part.function_call is not None]


async def test_function_calls(gemini: genai.client.AsyncClient) -> None:
    tools = [types.Tool(function_declarations=[WEATHER, TIME])]

    def config(mode: str, allowed: list[str] | None = None) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(tools=tools, tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=mode, allowed_function_names=allowed)))  # type: ignore[arg-type]

    forced = _calls(await gemini.models.generate_content(model=MODEL, contents="Hello", config=config("ANY")))
    assert [c.name for c in forced] == ["get_weather"]
    jsonschema.validate(forced[0].args, WEATHER_JSON_SCHEMA)
    limited = await gemini.models.generate_content(model=MODEL, contents="Hello", config=config("ANY", ["get_time"]))
    assert [c.name for c in _calls(limited)] == ["get_time"]
    jsonschema.validate(_calls(limited)[0].args, TIME.parameters_json_schema)  # type: ignore[arg-type]
    parallel = await gemini.models.generate_content(model=MODEL, contents="Use get_weather and get_time.",
                                                    config=config("AUTO"))
    assert [c.name for c in _calls(parallel)] == ["get_weather", "get_time"]
    assert parallel.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert not _calls(await gemini.models.generate_content(model=MODEL, contents="Use get_weather.",
                                                           config=config("NONE")))
    assert not _calls(await gemini.models.generate_content(model=MODEL, contents="Hi", config=config("AUTO")))

    streamed = [c async for c in await gemini.models.generate_content_stream(
        model=MODEL, contents="Use get_weather and get_time.", config=config("AUTO"))]
    assert [c.name for chunk in streamed for c in _calls(chunk)] == ["get_weather", "get_time"]
    assert [len(_calls(chunk)) for chunk in streamed] == [2, 0]  # the calls arrive whole, in one event

    history = [
        types.Content(role="user", parts=[types.Part(text="Use get_weather and get_time.")]),
        parallel.candidates[0].content,  # type: ignore[index]
        types.Content(role="user", parts=[
            types.Part.from_function_response(name="get_weather", response={"result": "Sunny, 21 degrees"}),
            types.Part.from_function_response(name="get_time", response={"hour": 10})])]
    answer = await gemini.models.generate_content(model=MODEL, contents=history, config=config("AUTO"))
    assert text_of(answer) == 'Tool result: Sunny, 21 degrees | {"hour":10}'


# -- structured output -------------------------------------------------------------------------------------------


async def test_json_mode(gemini: genai.client.AsyncClient) -> None:
    schema = types.Schema(type=types.Type.OBJECT, required=["name", "tags"], properties={
        "name": types.Schema(type=types.Type.STRING),
        "tags": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING), min_items=2),
        "size": types.Schema(type=types.Type.STRING, enum=["S", "M"], nullable=True)})
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    response = await gemini.models.generate_content(model=MODEL, contents="Describe a river", config=config)
    value = orjson.loads(text_of(response))
    assert isinstance(value["name"], str) and len(value["tags"]) >= 2 and value["size"] in ("S", "M")

    json_schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 9}},
                   "required": ["n"], "additionalProperties": False}
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=json_schema)
    response = await gemini.models.generate_content(model=MODEL, contents="A number", config=config)
    jsonschema.validate(orjson.loads(text_of(response)), json_schema)

    free = await gemini.models.generate_content(model=MODEL, contents="Anything", config=types.GenerateContentConfig(
        response_mime_type="application/json"))
    assert isinstance(orjson.loads(text_of(free))["reply"], str)


# -- thinking, usage and sampling ---------------------------------------------------------------------------------


async def test_thinking(gemini: genai.client.AsyncClient, sim: SimServer) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    response = await gemini.models.generate_content(model=MODEL, contents="Think first", config=config)
    parts = response.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts is not None and parts[0].thought is True and parts[0].thought_signature is None
    assert parts[1].thought is None and parts[1].thought_signature  # the first answer part carries it
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count == count_tokens(parts[0].text or "")
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (usage.candidates_token_count or 0) \
        + usage.thoughts_token_count

    streamed = [c async for c in await gemini.models.generate_content_stream(
        model=MODEL, contents="Think first", config=config)]
    first = streamed[0].candidates[0].content.parts[0]  # type: ignore[index,union-attr]
    assert first.thought and first.text == parts[0].text
    assert streamed[1].candidates[0].content.parts[0].thought_signature == parts[1].thought_signature  # type: ignore[index,union-attr]

    budget = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=3))
    quiet = await gemini.models.generate_content(model=MODEL, contents="Think first", config=budget)
    assert quiet.usage_metadata.thoughts_token_count == 3  # type: ignore[union-attr]
    assert not any(p.thought for p in quiet.candidates[0].content.parts or ())  # type: ignore[index,union-attr]

    sim.set_behaviour(MODEL, "reasoning=50")
    capped = await gemini.models.generate_content(model=MODEL, contents="Think first",
                                                  config=types.GenerateContentConfig(max_output_tokens=52))
    assert capped.usage_metadata.thoughts_token_count == 50  # type: ignore[union-attr]
    assert capped.usage_metadata.candidates_token_count == 2  # type: ignore[union-attr]
    assert capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS  # type: ignore[index]


async def test_cached_tokens_and_prompt_counts(gemini: genai.client.AsyncClient, sim: SimServer) -> None:
    sim.set_behaviour(MODEL, "cached=4")
    png = base64.b64encode(b"\x89PNG not really").decode()
    contents = [types.Content(role="user", parts=[types.Part(text="What is this?"),
                                                  types.Part.from_bytes(data=base64.b64decode(png),
                                                                        mime_type="image/png")])]
    response = await gemini.models.generate_content(model=MODEL, contents=contents, config=types.GenerateContentConfig(
        system_instruction="Be brief."))
    usage = response.usage_metadata
    assert usage is not None and usage.cached_content_token_count == 4
    assert usage.prompt_token_count == count_tokens("Be brief.") + count_tokens("What is this?") + TOKENS_PER_MEDIA
    details = {d.modality: d.token_count for d in usage.prompt_tokens_details or ()}
    text = count_tokens("Be brief.") + count_tokens("What is this?")
    assert details == {types.MediaModality.TEXT: text, types.MediaModality.IMAGE: TOKENS_PER_MEDIA}
    assert count_prompt_tokens(["Be brief."], sim.requests[-1].body["contents"]) == (text, TOKENS_PER_MEDIA)


async def test_candidates_stop_sequences_and_logprobs(gemini: genai.client.AsyncClient) -> None:
    several = await gemini.models.generate_content(model=MODEL, contents="Hi", config=types.GenerateContentConfig(
        candidate_count=3))
    texts = [text_of(types.GenerateContentResponse(candidates=[c])) for c in several.candidates or ()]
    assert len(texts) == 3 and len(set(texts)) == 3
    assert [c.index for c in several.candidates or ()] == [0, 1, 2]

    full = text_of(await gemini.models.generate_content(model=MODEL, contents="Hi"))
    word = full.split()[2]
    cut = await gemini.models.generate_content(model=MODEL, contents="Hi", config=types.GenerateContentConfig(
        stop_sequences=[word]))
    assert text_of(cut) == full[: full.index(word)] and cut.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]

    short = await gemini.models.generate_content(model=MODEL, contents="Hi", config=types.GenerateContentConfig(
        max_output_tokens=2))
    assert short.usage_metadata.candidates_token_count == 2  # type: ignore[union-attr]
    assert short.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS  # type: ignore[index]

    scored = await gemini.models.generate_content(model=MODEL, contents="Hi", config=types.GenerateContentConfig(
        response_logprobs=True, logprobs=2))
    candidate = scored.candidates[0]  # type: ignore[index]
    result = candidate.logprobs_result
    assert result is not None and result.chosen_candidates and result.top_candidates
    assert "".join(c.token or "" for c in result.chosen_candidates) == text_of(scored)
    assert all(len(top.candidates or ()) == 2 for top in result.top_candidates)
    assert candidate.avg_logprobs is not None and candidate.avg_logprobs <= 0


# -- strictness ----------------------------------------------------------------------------------------------------

CALL_TURN = {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]}
DECLARATION = {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}


def _answer(*names: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"functionResponse": {"name": n, "response": {"result": "x"}}} for n in names]}


REFUSED: list[tuple[str, Any, str]] = [
    ("no contents", {}, "* GenerateContentRequest.contents: contents is not specified"),
    ("empty contents", {"contents": []}, "contents is not specified"),
    ("openai role", {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
     "Please use a valid role: user, model."),
    ("no parts", {"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
    ("empty part", {"contents": [{"role": "user", "parts": [{}]}]},
     "required oneof field 'data' must have one initialized field"),
    ("two data fields", {"contents": [{"role": "user", "parts": [{"text": "a", "fileData": {"fileUri": "u"}}]}]},
     "Oneof field 'data' is already set"),
    ("unknown field", {"contents": USER, "messages": []}, 'Unknown name "messages": Cannot find field.'),
    ("unknown nested field", {"contents": USER, "generationConfig": {"max_tokens": 5}},
     """Unknown name "max_tokens" at 'generation_config': Cannot find field."""),
    ("temperature", {"contents": USER, "generationConfig": {"temperature": 2.5}}, "temperature: must be in the range"),
    ("top_p type", {"contents": USER, "generationConfig": {"topP": "high"}},
     "Invalid value at 'generation_config.top_p' (TYPE_FLOAT)"),
    ("candidates", {"contents": USER, "generationConfig": {"candidateCount": 9}}, "must be between 1 and 8"),
    ("stop sequences", {"contents": USER, "generationConfig": {"stopSequences": list("abcdef")}},
     "at most 5 stop sequences"),
    ("logprobs alone", {"contents": USER, "generationConfig": {"logprobs": 2}}, "response_logprobs is true"),
    ("thinking budget", {"contents": USER, "generationConfig": {"thinkingConfig": {"thinkingBudget": 99999}}},
     "The thinking budget 99999 is invalid"),
    ("schema outside the subset", {"contents": USER, "generationConfig": {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "additionalProperties": False}}},
     """Unknown name "additionalProperties" at 'generation_config.response_schema': Cannot find field."""),
    ("schema ref", {"contents": USER, "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": {"$ref": "#/$defs/A"}}}, 'Unknown name "$ref"'),
    ("numeric enum", {"contents": USER, "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": {"type": "INTEGER", "enum": [1, 2]}}},
     "Invalid value at 'generation_config.response_schema.enum[0]' (TYPE_STRING)"),
    ("schema without json", {"contents": USER, "generationConfig": {"responseSchema": {"type": "STRING"}}},
     "response_mime_type must be application/json"),
    ("mime type", {"contents": USER, "generationConfig": {"responseMimeType": "text/html"}}, "allowed mimetypes"),
    ("empty parameters", {"contents": USER, "tools": [{"functionDeclarations": [
        {"name": "f", "parameters": {"type": "OBJECT", "properties": {}}}]}]},
     "tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type"),
    ("function name", {"contents": USER, "tools": [{"functionDeclarations": [{"name": "get weather"}]}]},
     "Invalid function name."),
    ("allowed names with AUTO", {"contents": USER, "tools": [{"functionDeclarations": [DECLARATION]}],
                                 "toolConfig": {"functionCallingConfig": {"mode": "AUTO",
                                                                          "allowedFunctionNames": ["get_weather"]}}},
     "allowed_function_names should only be set when mode is ANY"),
    ("calling mode", {"contents": USER, "toolConfig": {"functionCallingConfig": {"mode": "REQUIRED"}}},
     "Invalid value at 'tool_config.function_calling_config.mode'"),
    ("response without call", {"contents": [*USER, _answer("get_weather")]},
     "Please ensure that function response turn comes immediately after a function call turn."),
    ("response to another function", {"contents": [*USER, CALL_TURN, _answer("get_time")]},
     "function response 'get_time' answers no function call of the previous turn."),
    ("response count", {"contents": [*USER, CALL_TURN, _answer("get_weather", "get_weather")]},
     "the number of function response parts is equal to the number of function call parts"),
    ("bad base64", {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png",
                                                                            "data": "not base64!"}}]}]},
     "Base64 decoding failed"),
    ("bad signature", {"contents": [*USER, {"role": "model", "parts": [{"text": "x", "thoughtSignature": "%%"}]}]},
     "Invalid value at 'contents[1].parts[0].thought_signature' (TYPE_BYTES)"),
]


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in REFUSED], ids=[n for n, _, _ in REFUSED])
async def test_refused_like_the_real_api(http: aiohttp.ClientSession, body: Any, message: str) -> None:
    status, headers, raw = await post(http, body)
    error = orjson.loads(raw)["error"]
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert set(error) == {"code", "message", "status"}
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


async def test_bad_json_and_credentials(http: aiohttp.ClientSession, gemini: genai.client.AsyncClient) -> None:
    status, _, raw = await post(http, b"{not json")
    assert status == 400 and "Invalid JSON payload received" in orjson.loads(raw)["error"]["message"]
    status, _, raw = await post(http, {"contents": USER}, headers={})
    assert status == 403 and orjson.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
    status, _, _ = await post(http, {"contents": USER}, PATH + "?key=from-query", headers={})
    assert status == 200
    with pytest.raises(errors.ClientError) as caught:
        await gemini.models.generate_content(model=MODEL, contents=[types.Content(role="user", parts=[])])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


async def test_gemini_3_needs_thought_signatures_back(gemini: genai.client.AsyncClient) -> None:
    model = "gemini-3-pro-preview"
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        thinking_config=types.ThinkingConfig(include_thoughts=True))
    first = await gemini.models.generate_content(model=model, contents="Use get_weather for Oslo", config=config)
    turn = first.candidates[0].content  # type: ignore[index]
    assert turn is not None and turn.parts is not None
    call_part = next(p for p in turn.parts if p.function_call)
    assert call_part.thought_signature
    answer = types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather",
                                                                                 response={"result": "Snow"})])
    question = types.Content(role="user", parts=[types.Part(text="Use get_weather for Oslo")])
    ok = await gemini.models.generate_content(model=model, contents=[question, turn, answer], config=config)
    assert text_of(ok) == "Tool result: Snow"

    unsigned = types.Content(role="model", parts=[types.Part(function_call=call_part.function_call)])
    with pytest.raises(errors.ClientError) as caught:
        await gemini.models.generate_content(model=model, contents=[question, unsigned, answer], config=config)
    assert "Function call is missing a thought_signature" in (caught.value.message or "")
    placeholder = types.Content(role="model", parts=[types.Part(
        function_call=call_part.function_call,
        thought_signature=base64.urlsafe_b64decode("skip_thought_signature_validator"))])
    await gemini.models.generate_content(model=model, contents=[question, placeholder, answer], config=config)
    await gemini.models.generate_content(model=MODEL, contents=[question, unsigned, answer], config=config)  # 2.5: fine


# -- behaviour directives ------------------------------------------------------------------------------------------

STATUSES = [(400, errors.ClientError, "INVALID_ARGUMENT"), (401, errors.ClientError, "UNAUTHENTICATED"),
            (403, errors.ClientError, "PERMISSION_DENIED"), (404, errors.ClientError, "NOT_FOUND"),
            (429, errors.ClientError, "RESOURCE_EXHAUSTED"), (500, errors.ServerError, "INTERNAL"),
            (503, errors.ServerError, "UNAVAILABLE"), (504, errors.ServerError, "DEADLINE_EXCEEDED")]


@pytest.mark.parametrize(("code", "kind", "name"), STATUSES)
async def test_status_errors(gemini: genai.client.AsyncClient, sim: SimServer, code: int,
                             kind: type[errors.APIError], name: str) -> None:
    sim.set_behaviour(MODEL, f"status={code}")
    for stream in (False, True):
        with pytest.raises(kind) as caught:
            await generate(gemini, stream, model=MODEL, contents="x")
        assert caught.value.code == code and caught.value.status == name
    if code == 404:
        assert f"models/{MODEL} is not found" in (caught.value.message or "")


async def test_rate_limit_details(http: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(http, {"contents": USER},
                                      f"/v1beta/models/{MODEL}%23status%3D429%3Bretry_after%3D2:generateContent")
    error = orjson.loads(raw)["error"]
    assert status == 429 and error["status"] == "RESOURCE_EXHAUSTED" and headers["retry-after"] == "2"
    kinds = [detail["@type"].rsplit(".", 1)[1] for detail in error["details"]]
    assert kinds == ["QuotaFailure", "Help", "RetryInfo"] and error["details"][2]["retryDelay"] == "2s"


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


async def test_failing_first_then_succeeding(gemini: genai.client.AsyncClient, sim: SimServer) -> None:
    sim.set_behaviour(MODEL, "fail_first=1")
    with pytest.raises(errors.ServerError):
        await gemini.models.generate_content(model=MODEL, contents="x")
    assert text_of(await gemini.models.generate_content(model=MODEL, contents="x"))


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
