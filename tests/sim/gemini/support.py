"""Requests and helpers the Gemini simulator tests share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from google import genai
from google.genai import types

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
