"""The simulator's cloud formats refuse what the clouds refuse: Bedrock without credentials or with Anthropic's
own body, Vertex without an OAuth2 token or with the wrong `anthropic_version`, Azure without `api-key` or
`api-version`; and Converse's own checks."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

MESSAGES = {"max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
BEDROCK_BODY = {"anthropic_version": "bedrock-2023-05-31", **MESSAGES}
VERTEX = "/v1/projects/p/locations/l/publishers"


async def post(http: aiohttp.ClientSession, path: str, body: Any, headers: dict[str, str]) \
        -> tuple[int, dict[str, str], bytes]:
    async with http.post(path, data=orjson.dumps(body), headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize(("path", "body", "headers", "status", "needle"), [
    ("/model/anthropic.claude-x/invoke", BEDROCK_BODY, {}, 403, b"Missing Authentication Token"),
    ("/model/anthropic.claude-x/invoke", {**BEDROCK_BODY, "model": "x"}, {"Authorization": "Bearer k"}, 400,
     b"model"),
    ("/model/anthropic.claude-x/invoke", MESSAGES, {"Authorization": "Bearer k"}, 400, b"anthropic_version"),
    ("/model/amazon.nova-x/converse", {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "stream": True},
     {"Authorization": "Bearer k"}, 400, b"extraneous key [stream]"),
    (f"{VERTEX}/anthropic/models/claude-x:rawPredict", {"anthropic_version": "vertex-2023-10-16", **MESSAGES}, {},
     401, b"UNAUTHENTICATED"),
    (f"{VERTEX}/anthropic/models/claude-x:rawPredict", BEDROCK_BODY, {"Authorization": "Bearer t"}, 400,
     b"vertex-2023-10-16"),
    (f"{VERTEX}/google/models/gemini-x:generateContent", {"contents": []}, {"x-goog-api-key": "k"}, 401,
     b"UNAUTHENTICATED"),
    ("/openai/deployments/gpt/chat/completions?api-version=2024-10-21", MESSAGES, {"Authorization": "x"}, 401,
     b"Access denied"),
    ("/openai/deployments/gpt/chat/completions", MESSAGES, {"api-key": "k"}, 404, b"Resource not found"),
])
async def test_refusals(http: aiohttp.ClientSession, path: str, body: Any, headers: dict[str, str], status: int,
                        needle: bytes) -> None:
    answer_status, answer_headers, answer = await post(http, path, body, headers)
    assert answer_status == status and needle in answer, answer
    if path.startswith("/model/"):
        assert answer_headers["x-amzn-ErrorType"].split(":")[0] in ("ValidationException", "AccessDeniedException")


async def test_converse_stream_is_event_stream_framed(http: aiohttp.ClientSession) -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"maxTokens": 40}}
    status, headers, data = await post(http, "/model/amazon.nova-x/converse-stream", body,
                                       {"Authorization": "Bearer k"})
    assert status == 200 and headers["Content-Type"] == "application/vnd.amazon.eventstream"
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    kinds = [message.headers[":event-type"] for message in buffer]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert "contentBlockDelta" in kinds
