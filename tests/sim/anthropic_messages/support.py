"""Requests and helpers the Anthropic Messages simulator tests share."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import orjson
from anthropic.types import Message

MODEL = "claude-sim"  # not a real model id: the SDK warns about deprecated ones
USER = [{"role": "user", "content": "Tell me something about rivers."}]
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}},
                                             "required": ["zone"]}}
THINKING = {"type": "enabled", "budget_tokens": 1024}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "messages": USER, **fields}


async def post(http: aiohttp.ClientSession, payload: Any, headers: dict[str, str] | None = None) \
        -> tuple[int, dict[str, str], bytes]:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    async with http.post("/v1/messages", data=data, headers=HEADERS if headers is None else headers) as response:
        return response.status, dict(response.headers), await response.read()


def blocks(message: Message) -> list[dict[str, Any]]:
    """Content blocks as plain data (the stream helper adds `parsed_output` to text blocks)."""
    return [{k: v for k, v in block.model_dump().items() if k != "parsed_output"} for block in message.content]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) of an SSE body, checking each event is exactly `event: X\\ndata: {...}\\n\\n`."""
    assert raw.endswith(b"\n\n")
    out = []
    for event in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = event.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), event
        payload = orjson.loads(data_line[len("data: "):])
        assert payload["type"] == name_line[len("event: "):]
        out.append((payload["type"], payload))
    return out


async def stream_text(claude: anthropic.AsyncAnthropic, model: str, into: list[str]) -> None:
    """Stream a reply's text into `into` (which keeps what arrived when the stream fails)."""
    async with claude.messages.stream(model=model, max_tokens=100, messages=USER) as stream:  # type: ignore[arg-type]
        async for text in stream.text_stream:
            into.append(text)
