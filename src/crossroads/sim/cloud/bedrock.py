"""Amazon Bedrock's InvokeModel for Claude: `POST /model/{modelId}/invoke` and
`/model/{modelId}/invoke-with-response-stream`.

The body is Anthropic's Messages request without `model` and `stream`, with
`anthropic_version: "bedrock-2023-05-31"` (Bedrock user guide, "Anthropic Claude Messages API"). Requests
must carry a Signature Version 4 `Authorization` (with `X-Amz-Date`) or a Bedrock API key as a bearer
token; errors are `{"message"}` with the error's name in `x-amzn-ErrorType`. A stream is Anthropic's events,
each base64 in the `{"bytes"}` payload of an event-stream `chunk` message (`eventstream.py`); a failure
mid-stream is an exception message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from ..anthropic_messages.render import MessagesExchange
from ..behaviour import Behaviour
from ..checks import bearer_token
from ..wire import SimError, StreamEvent, retry_after_header
from . import eventstream
from .anthropic_body import prepare_messages

__all__ = ["BEDROCK", "Bedrock", "BedrockExchange"]

VERSION: Final = "bedrock-2023-05-31"
#: HTTP status → the name Bedrock gives that error.
ERROR_NAMES: Final[Mapping[int, str]] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def bedrock_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    name = ERROR_NAMES.get(status, "InternalServerException")
    return SimError(status, orjson.dumps({"message": message}),
                    {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                     **(headers or {})})


class BedrockExchange:
    """A Messages reply as Bedrock sends it: the body as is; the stream's events in event-stream framing."""

    __slots__ = ("_inner",)
    #: The `x-amzn-RequestId` its replies carry.
    request_id = "00000000-0000-4000-8000-0000000000b7"

    def __init__(self, inner: MessagesExchange) -> None:
        self._inner = inner

    @property
    def stream(self) -> bool:
        return self._inner.stream

    @property
    def generated_tokens(self) -> int:
        return self._inner.generated_tokens

    @property
    def reasoning_tokens(self) -> int:
        return self._inner.reasoning_tokens

    def headers(self) -> dict[str, str]:
        kind = "application/vnd.amazon.eventstream" if self.stream else "application/json"
        return {"Content-Type": kind, "x-amzn-RequestId": self.request_id}

    def body(self) -> bytes:
        return self._inner.body()

    def events(self) -> Iterator[StreamEvent]:
        for event in self._inner.events():
            data = _sse_data(event.data)
            if b'"type":"ping"' in data:
                continue  # Bedrock relays no pings
            yield StreamEvent(eventstream.chunk(data), event.kind, event.tokens)

    def malformed_event(self) -> bytes:
        return eventstream.chunk(b'{"type":"content_block_delta","index":0,"delta":{')

    def error_event(self) -> bytes:
        return eventstream.exception("serviceUnavailableException", "Bedrock is unable to process your request.")


def _sse_data(event: bytes) -> bytes:
    """The `data:` of one server-sent event as the Messages simulator renders it (one data line)."""
    for line in event.split(b"\n"):
        if line.startswith(b"data: "):
            return line[6:]
    return b""


class Bedrock:
    name = "bedrock"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("AWS4-HMAC-SHA256 ") and request.headers.get("X-Amz-Date"):
            return
        if not bearer_token(request):
            raise bedrock_error(403, "Missing Authentication Token")

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return request.match_info.get("model")

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return bedrock_error(status, message)

    def invalid_json(self) -> SimError:
        return bedrock_error(400, "Malformed input request, please reformat your input and try again.")

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return bedrock_error(status, f"Simulated {status} for {model}", retry_after_header(retry_after))

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> BedrockExchange:
        self._serial += 1
        try:
            inner = prepare_messages(request, body, model, behaviour, version=VERSION, serial=self._serial,
                                     stream=request.path.endswith("/invoke-with-response-stream"))
        except SimError as exc:  # Anthropic's shape → Bedrock's
            message = orjson.loads(exc.body).get("error", {}).get("message", "Malformed input request")
            raise bedrock_error(exc.status, message) from None
        return BedrockExchange(inner)


BEDROCK = Bedrock()
