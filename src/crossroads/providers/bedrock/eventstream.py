"""Bedrock's streamed replies: AWS event-stream messages, decoded by botocore.

ConverseStream and InvokeModelWithResponseStream (Bedrock API reference) answer
`application/vnd.amazon.eventstream`: binary messages, each a prelude (total and header lengths, CRC32),
typed headers, a payload and a CRC32 of the whole ("Event stream encoding" in the AWS SDK docs).
`botocore.eventstream.EventStreamBuffer` checks and splits them. `EventStreamDecoder` yields each event as
(its `:event-type`, its JSON payload), and a message of type `exception` (its error in `:exception-type`,
`{"message"}` as payload) as ("exception", `{"exception", "message"}`): ConverseStream's events.

InvokeModelWithResponseStream wraps the model's own stream: each `chunk` event has the payload
`{"bytes": "<base64>"}`, for Claude one Anthropic Messages event. `InvokeStreamDecoder` unwraps them, and
turns an exception into Anthropic's in-stream `error` event with the Anthropic error type of the same
meaning, so the Anthropic translator handles both alike.

botocore is imported when the first stream is decoded, not when the gateway starts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.providers.sse import Event

#: Bedrock's stream exception types → the Anthropic error type of the same meaning.
EXCEPTION_TYPES: Final[Mapping[str, str]] = {
    "throttlingException": "rate_limit_error",
    "validationException": "invalid_request_error",
    "modelTimeoutException": "timeout_error",
    "serviceUnavailableException": "overloaded_error",
    "internalServerException": "api_error",
    "modelStreamErrorException": "api_error",
}


#: Bedrock's stream exception types → the HTTP status Bedrock gives the same error outside a stream.
EXCEPTION_STATUS: Final[Mapping[str, int]] = {
    "throttlingException": 429,
    "validationException": 400,
    "modelTimeoutException": 408,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 502,
}


class EventStreamDecoder:
    """AWS event-stream bytes → (event type, payload) per event, ("exception", `{"exception", "message"}`)
    per exception; a framing error becomes an exception too (the stream cannot go on)."""

    __slots__ = ("_broken", "_buffer")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._broken = False

    def feed(self, chunk: bytes) -> list[Event]:
        if self._broken:
            return []
        from botocore.eventstream import ParserError

        self._buffer.add_data(chunk)
        events: list[Event] = []
        try:
            for message in self._buffer:
                event = self._event(message.headers, message.payload)
                if event is not None:
                    events.append(event)
        except ParserError as exc:
            self._broken = True
            events.append(self._exception("internalServerException", f"Provider sent a broken event stream: {exc}"))
        return events

    def flush(self) -> list[Event]:
        return []

    def _event(self, headers: Mapping[str, Any], payload: bytes) -> Event | None:
        if headers.get(":message-type") == "event":
            return str(headers.get(":event-type")), payload
        name = str(headers.get(":exception-type") or headers.get(":error-code") or "internalServerException")
        try:
            message = orjson.loads(payload).get("message") if payload else None
        except (orjson.JSONDecodeError, AttributeError):
            message = None
        return self._exception(name, str(message or name))

    def _exception(self, name: str, message: str) -> Event:
        return "exception", orjson.dumps({"exception": name, "message": message})


class InvokeStreamDecoder(EventStreamDecoder):
    """InvokeModelWithResponseStream: (None, the model's event) per `chunk`, Anthropic's `error` event per
    exception."""

    __slots__ = ()

    def _event(self, headers: Mapping[str, Any], payload: bytes) -> Event | None:
        if headers.get(":message-type") != "event":
            return super()._event(headers, payload)
        if headers.get(":event-type") != "chunk":
            return None  # event types added after this was written
        try:
            return None, base64.b64decode(orjson.loads(payload)["bytes"], validate=True)
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            return _error("api_error", "Provider sent a malformed stream chunk")

    def _exception(self, name: str, message: str) -> Event:
        return _error(EXCEPTION_TYPES.get(name, "api_error"), message)


def _error(kind: str, message: str) -> Event:
    return "error", orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


__all__ = ["EXCEPTION_STATUS", "EXCEPTION_TYPES", "EventStreamDecoder", "InvokeStreamDecoder"]
