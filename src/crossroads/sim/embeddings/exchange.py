"""The reply to an embeddings (or rerank) request: one JSON body, never a stream. The server's timing and failure
directives (`latency`, `status`, `fail_first`, `malformed`, `drop_after`, `hang`) apply as to any request;
the stream-only ones have nothing to act on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ..wire import StreamEvent

_JSON = {"Content-Type": "application/json"}


class EmbeddingsExchange:
    """`Exchange` for a reply computed up front."""

    stream = False
    generated_tokens = 0
    reasoning_tokens = 0

    def __init__(self, reply: dict[str, Any] | list[Any]) -> None:
        self._reply = reply

    def headers(self) -> dict[str, str]:
        return dict(_JSON)

    def body(self) -> bytes:
        return orjson.dumps(self._reply)

    def events(self) -> Iterator[StreamEvent]:
        return iter(())

    def malformed_event(self) -> bytes:
        return b""

    def error_event(self) -> bytes:
        return b""


__all__ = ["EmbeddingsExchange"]
