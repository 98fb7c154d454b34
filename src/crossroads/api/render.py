"""Encoding responses: JSON bodies, SSE events and error envelopes — each in exactly one place."""

from __future__ import annotations

import os
import random
import time
from typing import Any, Final

import orjson
from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter

from crossroads.errors import CrossroadsError

JSON: Final = "application/json"
DONE: Final = b"data: [DONE]\n\n"
KEEPALIVE: Final = b": OPENROUTER PROCESSING\n\n"
#: The headers of every streamed response, whatever its API.
SSE_HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


#: Generation ids need to be unique, not secret: a fast generator seeded from the OS is enough (and saves
#: a system call per request).
_IDS = random.Random(os.urandom(32))


def generation_id() -> str:
    """`gen-<unix seconds>-<20 alphanumerics>`, the shape OpenRouter's ids have on the wire."""
    return f"gen-{int(time.time())}-{_IDS.getrandbits(80):020x}"


class Pieces(payload.Payload):
    """A whole body held as several buffers — a provider's bytes beside the gateway's own — and written side
    by side, never joined: on the fast lane in one `writev` with the head, on aiohttp's path one write each.
    Only what must keep one `bytes` (the response cache) joins them (`whole`)."""

    def __init__(self, pieces: tuple[bytes | memoryview, ...], content_type: str = JSON) -> None:
        super().__init__(pieces, content_type=content_type)
        self.pieces = pieces
        self.length = sum(map(len, pieces))

    @property
    def size(self) -> int:
        return self.length

    def whole(self) -> bytes:
        return b"".join(self.pieces)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.whole().decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.whole()

    async def write(self, writer: AbstractStreamWriter) -> None:
        for piece in self.pieces:
            await writer.write(piece)


def whole_body(response: web.Response) -> bytes | None:
    """A whole reply's body as one `bytes`, None for one that is not in memory."""
    body = response.body
    if isinstance(body, Pieces):
        return body.whole()
    return body if isinstance(body, bytes) else None


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_response(error: CrossroadsError, headers: dict[str, str] | None = None) -> web.Response:
    merged = {**error.headers, **(headers or {})}
    return web.Response(body=error.body(), status=error.code, content_type=JSON, headers=merged or None)


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
