"""The OpenAI-format stream translator."""

from __future__ import annotations

import orjson

from crossroads.errors import UpstreamError
from crossroads.providers.base import Piece, StreamTranslator, malformed, normalise_finish
from crossroads.providers.openai_chat.errors import error_from_payload
from crossroads.providers.openai_chat.response import usage_from


class OpenAIStream(StreamTranslator):
    """Translates an OpenAI-format SSE stream: normalises finish reasons, moves `reasoning_content` to
    `reasoning`, and holds back the usage chunk (the gateway sends its own, with cost, at the end).

    Every chunk is decoded: orjson decodes a typical chunk in well under a microsecond, faster than even
    searching its bytes for the few fields that would need translating."""

    __slots__ = ()

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        if data == b"[DONE]":
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "Provider sent a malformed stream event",
                                provider=self.endpoint.provider.name, raw=data[:500].decode("utf-8", "replace"),
                                error_type="provider_unavailable") from exc
        if not isinstance(chunk, dict):
            raise malformed(self.endpoint, data)
        if "error" in chunk and not chunk.get("choices"):
            raise error_from_payload(chunk["error"], 502, self.endpoint)
        if self.upstream_id is None:
            self.upstream_id = chunk.get("id") or ""
            fingerprint = chunk.get("system_fingerprint")
            if fingerprint:
                self.head_fields["system_fingerprint"] = fingerprint
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_from(usage, self.endpoint)
        choices = chunk.get("choices")
        if not choices:
            return []
        for choice in choices:
            delta = choice.get("delta")
            if delta is None:
                choice["delta"] = delta = {}
            content = delta.get("content")
            if content:
                self.completion_chars += len(content)
            if "reasoning_content" in delta:
                delta["reasoning"] = delta.pop("reasoning_content")
            native = choice.get("finish_reason")
            if native is not None:
                self.native_finish_reason = native
                self.finish_reason = choice["finish_reason"] = normalise_finish(native)
            choice["native_finish_reason"] = native
        return [{"choices": choices}]
