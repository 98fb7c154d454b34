"""A Messages stream for a client that speaks the Messages API itself (`/messages`): the upstream's events
relayed as they came, not translated to chat chunks and back.

Each event still passes through here once, decoded, for what the gateway itself needs: the upstream id,
usage (`message_start`, then the cumulative `message_delta` updates), the stop reason, the characters
produced (the estimate when no usage comes) and in-band errors. A piece is `{"event": <the SSE event's
bytes>}`; `message_start` is held back and handed over with the first content event as
`{"message_start": <its payload>}`, so that the face can name the message as the gateway does and a stream
that fails before any content can still go to another provider. `ping` events are not relayed: the gateway
sends its own while the upstream is silent.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.anthropic_messages.errors import error_from_payload
from crossroads.providers.anthropic_messages.response import finish_reason
from crossroads.providers.anthropic_messages.stream import AnthropicStream
from crossroads.providers.base import Piece, malformed

#: The text each delta type adds to the reply (for the estimate when the provider reports no usage).
_DELTA_TEXT = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


class AnthropicRelay(AnthropicStream):
    __slots__ = ("_held",)

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._held: dict[str, Any] | None = None

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        parsed = self.event(event, data)
        if parsed is None:
            return []
        kind, payload = parsed
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            text = delta.get(_DELTA_TEXT.get(str(delta.get("type")), ""))
            if isinstance(text, str):
                self.completion_chars += len(text)
        elif kind == "message_start":
            message = payload.get("message") or {}
            self.upstream_id = message.get("id")
            self._update_usage(message.get("usage"))
            self._held = payload
            return []
        elif kind == "message_delta":
            self._update_usage(payload.get("usage"))
            native = (payload.get("delta") or {}).get("stop_reason")
            if native is not None:
                self.native_finish_reason = native
                self.finish_reason = finish_reason(native, False)
        elif kind == "error":
            raise error_from_payload(payload.get("error"), 502, self.endpoint)
        if not isinstance(kind, str):
            raise malformed(self.endpoint, data)
        if b"\n" in data or b"\r" in data:  # a multi-line `data:` field, joined by the decoder: one line again
            data = orjson.dumps(payload)
        piece: Piece = {"event": b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"}
        if self._held is not None:
            start, self._held = self._held, None
            return [{"message_start": start}, piece]
        return [piece]


__all__ = ["AnthropicRelay"]
