"""The contract between the server and each wire format (OpenAI Chat, Anthropic Messages, Gemini).

A wire format validates a request and renders replies, errors and stream events in its own shape. The
server does everything else the same way for every format: recording, behaviour resolution, delays,
pacing, failures, disconnect accounting. Adding a provider means writing one package (validate, plan,
render) that implements `WireFormat` and `Exchange` and registering its routes in `server.GENERATION_ROUTES`.
The few helpers every format's answers share (retry-after seconds, interleaved choice streams) are here too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from aiohttp import web

from .behaviour import Behaviour

__all__ = [
    "EventKind",
    "Exchange",
    "SimError",
    "StreamEvent",
    "WireFormat",
    "interleave",
    "retry_after_header",
    "seconds",
]

_Item = TypeVar("_Item")


class SimError(Exception):
    """An HTTP error answer, already rendered in a wire format's error shape."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def seconds(value: float) -> str:
    """A number of seconds as the providers write it in headers and messages: `2`, `0.5`."""
    return f"{value:g}"


def retry_after_header(retry_after: float | None) -> dict[str, str]:
    """The `retry-after` header of an error answer, when the behaviour asks for one."""
    return {"retry-after": seconds(retry_after)} if retry_after is not None else {}


class EventKind(Enum):
    HEAD = "head"  # before any content (a role chunk, message_start); always sent
    CONTENT = "content"  # carries generated output; counted by drop_after / error_after / malformed
    TAIL = "tail"  # after the content (finish chunk, usage chunk, [DONE])


@dataclass(frozen=True, slots=True)
class StreamEvent:
    data: bytes
    """The complete bytes of the event, framing included; written in one call."""
    kind: EventKind
    tokens: int = 0
    """Generated tokens the event carries, for `tps` pacing."""


def interleave(streams: list[Iterator[_Item]]) -> Iterator[_Item]:
    """The events of several choices' streams, one of each in turn (as providers stream `n` > 1)."""
    if len(streams) == 1:
        return streams[0]
    rows: Iterable[tuple[_Item | None, ...]] = itertools.zip_longest(*streams)
    return (item for row in rows for item in row if item is not None)


class Exchange(Protocol):
    """One validated request, ready to be answered."""

    @property
    def stream(self) -> bool: ...

    @property
    def generated_tokens(self) -> int:
        """Output tokens produced (reasoning included), for non-stream `tps` pacing."""
        ...

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens of one choice: generated (and paced) before the first content."""
        ...

    def headers(self) -> dict[str, str]:
        """Response headers for a successful answer (content type included)."""
        ...

    def body(self) -> bytes:
        """The full non-stream response body."""
        ...

    def events(self) -> Iterator[StreamEvent]:
        """The stream's events in order, ending with the format's terminator."""
        ...

    def malformed_event(self) -> bytes:
        """An event whose payload is not valid JSON."""
        ...

    def error_event(self) -> bytes:
        """An in-band error event (the stream ends after it)."""
        ...


class WireFormat(Protocol):
    """Stateless validation and rendering for one provider API."""

    name: str

    def authenticate(self, request: web.Request) -> None:
        """Raise `SimError` (401) when the request carries no credentials."""
        ...

    def model_of(self, request: web.Request, body: Any) -> str | None:
        """The model string the request names, `#directives` included, or None."""
        ...

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        """An error answer in this format's shape."""
        ...

    def invalid_json(self) -> SimError:
        """The answer to a body that is not JSON."""
        ...

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        """The answer for a `status=` directive, shaped like the provider's own error for that status."""
        ...

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> Exchange:
        """Validate the request (raising `SimError`) and plan the reply."""
        ...
