"""Gemini simulator: requests the real API would refuse are refused the same way, in Google's error shape."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors, types

from .support import MODEL, PATH, USER, WEATHER, post, text_of

# google-genai subclasses aiohttp's ClientSession for its async transport, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


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
