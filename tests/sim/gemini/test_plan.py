"""Gemini simulator: what a reply says (function calls, JSON, thoughts, candidates, usage), through the SDK."""

from __future__ import annotations

import base64

import jsonschema
import orjson
import pytest
from google import genai
from google.genai import types

from crossroads.sim import SimServer
from crossroads.sim.gemini import TOKENS_PER_MEDIA, count_prompt_tokens
from crossroads.sim.reply import count_tokens

from .support import MODEL, TIME, WEATHER, WEATHER_JSON_SCHEMA, text_of

# google-genai subclasses aiohttp's ClientSession for its async transport, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


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
