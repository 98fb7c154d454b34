"""Helpers shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

AUTH = {"Authorization": "Bearer sk-test"}
USER = [{"role": "user", "content": "Tell me something about rivers."}]


def chat(**fields: Any) -> dict[str, Any]:
    """A minimal valid Chat Completions body, with `fields` added or replaced."""
    return {"model": "gpt-4o", "messages": USER, **fields}


def sse_payloads(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, checking each event is exactly `data: ...\\n\\n`."""
    assert raw.endswith(b"\n\n")
    payloads = []
    for event in raw.decode().split("\n\n")[:-1]:
        assert event.startswith("data: "), event
        assert "\n" not in event, event
        payloads.append(event[len("data: ") :])
    return payloads


async def post_chat(
    http: aiohttp.ClientSession, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST raw JSON to the chat endpoint; returns (status, headers, body)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.post("/v1/chat/completions", data=data, headers={**AUTH, **(headers or {})}) as response:
        return response.status, dict(response.headers), await response.read()
