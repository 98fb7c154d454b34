"""Reading request bodies: the size cap and JSON decoding, with OpenRouter-shaped errors."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from crossroads.errors import BadRequest, PayloadTooLarge, RequestTimeout

#: A client that has not sent its whole body after this many seconds gets 408.
BODY_TIMEOUT = 60.0


async def read_json(request: web.Request, max_bytes: int, deadline: float = BODY_TIMEOUT) -> Any:
    """The request's JSON body: at most `max_bytes`, arriving within `deadline` seconds."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {max_bytes} bytes")
    if request.content.is_eof():
        body = await request.read()  # already all here (the usual case): no timer needed
    else:
        try:
            async with asyncio.timeout(deadline):
                body = await _read_capped(request, max_bytes)
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {deadline:g} seconds") from None
    if not body:
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc


async def _read_capped(request: web.Request, max_bytes: int) -> bytes:
    if request.content_length is not None:
        return await request.read()
    # Chunked upload: read piece by piece so a huge body is refused before it is all in memory.
    parts = []
    size = 0
    async for data in request.content.iter_chunked(1 << 16):
        size += len(data)
        if size > max_bytes:
            raise PayloadTooLarge(f"Request body exceeds the limit of {max_bytes} bytes")
        parts.append(data)
    return b"".join(parts)
