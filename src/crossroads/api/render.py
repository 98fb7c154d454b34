"""Encoding responses: JSON bodies, SSE events and error envelopes — each in exactly one place."""

from __future__ import annotations

import os
import random
import time
from typing import Any, Final

import orjson
from aiohttp import web

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


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_response(error: CrossroadsError, headers: dict[str, str] | None = None) -> web.Response:
    merged = {**error.headers, **(headers or {})}
    return web.Response(body=error.body(), status=error.code, content_type=JSON, headers=merged or None)


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
