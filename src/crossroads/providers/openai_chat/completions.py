"""OpenAI's legacy Completions API (`POST {base}/completions`) for a `/completions` request whose endpoint's
provider serves it (`Quirks.legacy_completions`): the client's body as written, with the provider's model id,
and the reply read back into the chat shape the gateway works in (`response.parse_response` knows a legacy
reply by its `object`): each choice's `text` as its message content, its legacy `logprobs` kept as they came.

A stream's chunks carry `text` where chat chunks carry `delta.content`; `CompletionsStream` moves it there,
and the rest (finish reasons, usage, errors) is the chat stream's.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.base import Piece, UpstreamRequest
from crossroads.providers.openai_chat.params import QuirksPlan
from crossroads.providers.openai_chat.stream import OpenAIStream
from crossroads.schema.request import ChatRequest


def build(request: ChatRequest, endpoint: Endpoint, plan: QuirksPlan) -> UpstreamRequest:
    assert request.native is not None
    out: dict[str, Any] = {**request.native.body, "model": endpoint.upstream_model}
    if request.stream and plan.quirks.stream_usage:
        out["stream_options"] = {"include_usage": True}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.provider.api_key:
        headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
    for name, value in endpoint.provider.headers:
        headers[name] = value
    return UpstreamRequest(url=endpoint.provider.base_url + "/completions", headers=headers, body=orjson.dumps(out))


class CompletionsStream(OpenAIStream):
    __slots__ = ()

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        if data == b"[DONE]":
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().feed(event, data)  # the chat translator reports it as malformed
        if isinstance(chunk, dict):
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict) and "delta" not in choice:
                    text = choice.pop("text", None)
                    choice["delta"] = {"content": text} if isinstance(text, str) and text else {}
            data = orjson.dumps(chunk)
        return super().feed(event, data)


__all__ = ["CompletionsStream", "build"]
