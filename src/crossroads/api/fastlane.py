"""The fast lane: inference requests answered at the connection, without aiohttp's request and response
machinery.

Per request, aiohttp's server builds a parser message, a payload stream, a request object and a task, routes
and wraps the handler in middleware, and writes through a response object and a stream writer. On the
inference routes, which carry nearly all of a gateway's traffic, that was the largest cost per request
left: answering them here took a quarter off the gateway's CPU per non-stream chat completion (median of
six alternating wrk runs, c=16, against the same nginx mock; docs/benchmarks.md). The handlers are the
same; only what carries a request to them and their answer back changes.

Which requests take the lane: `POST` to an inference route (the exact path; a query string is allowed and,
as on aiohttp's path, unread by those handlers — Anthropic's SDK adds `?beta=true`) over HTTP/1.1,
at a request boundary of a connection aiohttp is not busy on, whose head is plain — header names that are
tokens, no control characters in values, one `Content-Length`, no `Transfer-Encoding`, `Expect` or
`Upgrade`, at most `MAX_HEAD` bytes. Anything else goes to aiohttp exactly as before (which also answers
every malformed request, `api/connections.py`): the lane changes nothing at the edges, it skips work on the
common case. A head may arrive in pieces and the body after it (as HTTP clients that write them separately
send them); the handler starts once the head is whole, and reads the body as `web.Request.read` would.

What the handlers get: a `LaneRequest`, the members of `web.Request` they read (`method`, `path`,
`headers`, `content_length`, `content.is_eof()`, `read()`, `app`). What they return: a `web.Response`,
written here as one status line, its headers, `Content-Length`, `Date` and the body; or a stream made by
`stream_response`, a `LaneStream` (a `web.StreamResponse` whose `prepare`, `write` and `write_eof` write
straight to the connection, chunked, waiting while the client is slow to read). The connection itself stays
aiohttp's: its keep-alive, shutdown and cancellation when the client goes treat a lane request as one of
their own, and the access log writes the same line.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from crossroads.api.render import Pieces

if TYPE_CHECKING:
    from crossroads.api.connections import GatewayProtocol

#: The most bytes of request line and headers the lane reads; a longer head goes to aiohttp's parser.
MAX_HEAD: Final = 8190

#: A plain head: `POST <path> HTTP/1.1`, then header lines whose names are tokens and whose values hold no
#: control character but tab (what aiohttp's parser refuses, it refuses too). Group 1: the path; group 2:
#: the header lines, each after its CRLF.
_PLAIN: Final = re.compile(rb"POST (/[!-~]*) HTTP/1\.1((?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*)")
_CRLF: Final = b"\r\n"


def _target(request_line: bytes) -> bytes:
    """The path of a `POST <path>[?<query>] HTTP/1.1` line, without its query; b"" for any other line."""
    if not request_line.startswith(b"POST ") or not request_line.endswith(b" HTTP/1.1"):
        return b""
    return _path(request_line[5:-9])


def _path(target: bytes) -> bytes:
    query = target.find(b"?")
    return target if query < 0 else target[:query]


#: `_sole`'s answer for a header given twice (a value never holds a NUL: `_PLAIN` refuses control characters).
_TWICE: Final = b"\0"


def _sole(lowered: bytes, marker: bytes) -> bytes | None:
    """The value of the header line `marker` (`b"\\r\\nname:"`) starts in a lowered header block, stripped;
    None when there is none, `_TWICE` when there are more."""
    at = lowered.find(marker)
    if at < 0:
        return None
    start = at + len(marker)
    if lowered.find(marker, start) >= 0:
        return _TWICE
    end = lowered.find(_CRLF, start)
    return lowered[start:end if end >= 0 else len(lowered)].strip(b" \t")


Handler = Callable[[Any], Awaitable[web.StreamResponse]]
Middleware = Callable[[Any, Handler], Awaitable[web.StreamResponse]]

#: The app's lane routes (path → handler), the middleware that wraps every handler, and what makes the
#: headers a response hook would add to every response (see `app.py`).
LANE_ROUTES: Final = web.AppKey("crossroads.lane_routes", dict)
LANE_MIDDLEWARE: Final = web.AppKey("crossroads.lane_middleware", object)
LANE_HEADERS: Final = web.AppKey("crossroads.lane_headers", object)


@dataclass(slots=True)
class Head:
    """A whole request head that takes the lane; the body starts at `body_start` of the bytes read."""

    handler: Handler
    path: str
    headers: CIMultiDictProxy[str]
    length: int
    #: The client asked for the connection to close after the answer.
    close: bool
    body_start: int


#: `Lane.head`'s answer for bytes that may become a lane request once more of them arrive.
WAIT: Final = "wait"


class Lane:
    """The routes the lane answers, and how a request reaches their handlers."""

    def __init__(self, app: web.Application, routes: Mapping[str, Handler],
                 headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.routes = {path.encode("ascii"): handler for path, handler in routes.items()}
        middleware = app.get(LANE_MIDDLEWARE)
        self.middleware: Middleware | None = middleware if callable(middleware) else None
        #: Headers added to every response (what the app's response hooks add).
        self.headers = dict(headers or {})

    def head(self, data: bytes) -> Head | str | None:
        """The lane request whose head `data` starts with; `WAIT` while the head is not whole and may still
        be one; None when it is not one (aiohttp takes it)."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD or not data.startswith(b"POST /"[:len(data)]):
                return None
            line_end = data.find(_CRLF)
            if line_end >= 0 and self.routes.get(_target(data[:line_end])) is None:
                return None
            return WAIT
        if end > MAX_HEAD:
            return None
        # One pass checks the request line, that every header name is a token and that no value holds a
        # control character; what is left is splitting.
        plain = _PLAIN.fullmatch(data, 0, end)
        if plain is None:
            return None
        path = _path(plain[1])
        handler = self.routes.get(path)
        if handler is None:
            return None
        block = plain[2]
        lowered = block.lower()
        if b"\r\ntransfer-encoding:" in lowered or b"\r\nexpect:" in lowered or b"\r\nupgrade:" in lowered:
            return None
        length = _sole(lowered, b"\r\ncontent-length:")
        if length is None or not length.isdigit():  # absent, twice, or not a plain number
            return None
        tokens = _sole(lowered, b"\r\nconnection:")
        if tokens == _TWICE or (tokens is not None and b"upgrade" in tokens):
            return None
        close = tokens is not None and b"close" in tokens
        # As aiohttp reads them: names ASCII, values UTF-8 with undecodable bytes kept as surrogates.
        pairs = []
        for line in block.decode("utf-8", "surrogateescape").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            pairs.append((name, value.strip(" \t")))
        return Head(handler, path.decode("ascii"), CIMultiDictProxy(CIMultiDict(pairs)), int(length), close, end + 4)

    async def handle(self, request: LaneRequest, handler: Handler) -> web.StreamResponse:
        if self.middleware is None:
            return await handler(request)
        return await self.middleware(request, handler)


class LaneRequest:
    """What the inference handlers read of a request, with its body as it arrives."""

    __slots__ = ("_arrived", "_chunks", "_waiter", "app", "close", "complete", "headers", "lane", "length", "method",
                 "path", "protocol", "task")

    def __init__(self, lane: Lane, head: Head, protocol: GatewayProtocol) -> None:
        self.lane = lane
        self.app = lane.app
        self.method = "POST"
        self.path = head.path
        self.headers = head.headers
        self.length = head.length
        #: The client asked for the connection to close after this answer.
        self.close = head.close
        self.protocol = protocol
        self._chunks: list[bytes] = []
        self._arrived = 0
        self.complete = head.length == 0
        self._waiter: asyncio.Future[None] | None = None
        #: The task answering it (cancelled when the client goes or shutdown runs out of time).
        self.task: asyncio.Task[None] | None = None

    @property
    def content_length(self) -> int:
        return self.length

    @property
    def content(self) -> LaneRequest:
        """`request.content`: the request itself answers the two questions handlers ask of it (a stored
        reference would make a cycle, left for the garbage collector on every request)."""
        return self

    def is_eof(self) -> bool:
        return self.complete

    def feed_eof(self) -> None:
        """The client will send no more (it half-closed): the body is what came."""
        self.end()

    def feed(self, data: bytes) -> bytes:
        """Take what belongs to the body; returns what comes after it (the next request's bytes)."""
        missing = self.length - self._arrived
        if len(data) <= missing:
            taken, rest = data, b""
        else:
            taken, rest = data[:missing], data[missing:]
        if taken:
            self._chunks.append(taken)
        self._arrived += len(taken)
        if self._arrived >= self.length:
            self.end()
        return rest

    def end(self) -> None:
        self.complete = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        if not self.complete:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _cancel(self, exc: BaseException) -> None:
        """aiohttp's connection calls this when the client went or shutdown gave up waiting."""
        if self.task is not None and not self.task.done():
            self.task.cancel()


class _Date:
    """The `Date` header's value, formatted once a second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.value = second, formatdate(second, usegmt=True).encode("ascii")
        return cls.value


_REASONS: Final = {status.value: status.phrase for status in HTTPStatus}


def head_bytes(status: int, reason: str | None, headers: Mapping[str, str], extra: Mapping[str, str],
               framing: bytes) -> bytes:
    """A response's status line and headers (`extra` after the response's own), `framing` (already
    formatted) and the blank line."""
    lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, '')}\r\n"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    for name, value in extra.items():
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8") + b"Date: " + _Date.now() + b"\r\nServer: Crossroads\r\n" + framing \
        + _CRLF


#: Bodies up to this size go out joined to their head in one buffer; larger ones beside it, not copied.
JOIN_BYTES: Final = 16 * 1024


def write_whole(transport: asyncio.Transport, response: web.Response, request: LaneRequest) -> None:
    """Write a whole reply: one buffer for a small body, head and body side by side (no copy of the body)
    for a large one — a 131 KB embeddings reply cost 7 µs to copy behind its head — and each of a `Pieces`
    body's buffers beside the head."""
    body = response.body
    if isinstance(body, Pieces):
        pieces: tuple[bytes | bytearray | memoryview, ...] = body.pieces
    elif isinstance(body, bytes | bytearray):
        pieces = (body,)
    else:
        raise TypeError(f"the lane writes bytes bodies, not {type(body).__name__}")
    size = sum(map(len, pieces))
    framing = b"Content-Length: %d\r\n" % size
    if request.close:
        framing += b"Connection: close\r\n"
    head = head_bytes(response.status, response.reason, response.headers, request.lane.headers, framing)
    if size <= JOIN_BYTES:
        transport.write(b"".join((head, *pieces)))
    else:
        transport.writelines((head, *pieces))


class LaneStream(web.StreamResponse):
    """A streamed answer to a lane request: aiohttp's response object for its status and headers, written
    straight to the connection in HTTP/1.1 chunked framing."""

    def __init__(self, *, headers: Mapping[str, str]) -> None:
        super().__init__(headers=headers)
        self._request: LaneRequest | None = None
        self._finished = False

    @property
    def prepared(self) -> bool:
        return self._request is not None

    async def prepare(self, request: Any) -> None:
        if self._request is not None:
            return
        assert isinstance(request, LaneRequest)
        self._request = request
        framing = b"Transfer-Encoding: chunked\r\n" + (b"Connection: close\r\n" if request.close else b"")
        self._send(head_bytes(self.status, self.reason, self.headers, request.lane.headers, framing))

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return  # an empty chunk would end the body
        self._send(b"".join((b"%x\r\n" % len(data), data, _CRLF)))
        await self._drain()

    async def write_eof(self, data: bytes | bytearray | memoryview = b"") -> None:
        if self._finished:
            return
        if self._request is None:
            raise RuntimeError("write_eof before prepare")
        self._finished = True
        self._send(b"".join((b"%x\r\n" % len(data), data, b"\r\n0\r\n\r\n")) if data else b"0\r\n\r\n")
        await self._drain()

    def _send(self, data: bytes) -> None:
        assert self._request is not None
        transport = self._request.protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        transport.write(data)

    async def _drain(self) -> None:
        assert self._request is not None
        protocol = self._request.protocol
        if protocol.writing_paused:
            await protocol._drain_helper()


def stream_response(request: web.Request, headers: Mapping[str, str]) -> web.StreamResponse:
    """The streamed response for `request`: a `LaneStream` for a lane request, aiohttp's otherwise."""
    if isinstance(request, LaneRequest):
        return LaneStream(headers=headers)
    return web.StreamResponse(headers=headers)


__all__ = ["LANE_HEADERS", "LANE_MIDDLEWARE", "LANE_ROUTES", "MAX_HEAD", "WAIT", "Head", "Lane", "LaneRequest",
           "LaneStream", "head_bytes", "stream_response", "write_whole"]
