"""A small HTTP/1.1 client for talking to upstream providers: keep-alive connection pools per origin, one
`httptools` parser per connection, bodies read whole or streamed as they arrive.

Why not a general-purpose client: on the request path of a gateway the client's own work is paid on every
request, and the benchmark suite measured aiohttp's client at roughly five times the CPU per request of a
plain protocol with `httptools` (docs/benchmarks.md). This client does only what talking to an LLM API
needs: POST a body (or GET a URL), read a status line, headers and a (content-length, chunked or close-delimited) body,
optionally gzip/deflate-encoded; reuse the connection when the server allows it.

Behaviour worth knowing:
- A request on a reused keep-alive connection that the server had already closed (no response byte came
  back) is retried once on a new connection — the usual race with an idle-timeout, and safe because the
  server never answered.
- `Response.close()` aborts the connection, so an abandoned stream stops the provider generating at once.
- Timeouts: `connect_timeout` for the TCP/TLS handshake; `first_byte_timeout` from sending the request to
  the response's headers; `read_timeout` for silence inside the body. No timer per exchange: one watchdog
  per client (`crossroads/watchdog.py`) checks the exchanges in flight every `WATCH_TICK` seconds (a quarter
  of the shorter timeout if that is less), so a timeout fires up to one tick late.
- While a streamed body is not being consumed, reading from the socket pauses beyond `HIGH_WATER` bytes; a
  body read whole (`Response.read`) is read to its end whatever its size.
- The body's pieces go from the parser straight into a list (`on_body` is that list's `append`, so a chunked
  reply of 130 KB in 44 chunks costs no Python call per chunk); the consumer joins and, for a gzip or
  deflate reply, decodes them when it takes them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httptools

from crossroads.watchdog import Watchdog

HIGH_WATER: Final = 1 << 20
#: Idle connections kept per origin; more are closed when returned.
POOL_SIZE: Final = 256
#: Seconds between two checks of the exchanges in flight against their timeouts (at most).
WATCH_TICK: Final = 0.25


class HTTPError(Exception):
    """A transport failure; `kind` says which: connect, timeout, closed, protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed URL: where to connect and what to put in the request line."""

    origin: tuple[str, str, int]  # scheme, host, port
    host_header: str
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        default = port == (443 if parts.scheme == "https" else 80)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls((parts.scheme, parts.hostname, port), host if default else f"{host}:{port}", path)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the exchange in progress on it."""

    def __init__(self, client: HTTPClient, origin: tuple[str, str, int]) -> None:
        self.client = client
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.response: Response | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._paused = False
        #: The body's pieces not yet taken by the response's consumer (raw: still encoded, if it is).
        self.body: list[bytes] = []
        #: httptools calls `on_body` for every piece of a body; set before the parser, which looks it up once.
        self.on_body = self.body.append
        self.parser = httptools.HttpResponseParser(self)

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self._abort()  # bytes nobody asked for: the connection cannot be trusted any more
            return
        response.last_activity = time.monotonic()
        response.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            response.fail(HTTPError("protocol", "unexpected protocol upgrade"))
            self._abort()
            return
        except httptools.HttpParserError as exc:
            response.fail(HTTPError("protocol", f"malformed HTTP response: {exc}"))
            self._abort()
            return
        if self.body:
            response.buffered += len(data)
            if response.buffered > HIGH_WATER and not response.whole and not self._paused \
                    and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            response._wake()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if response.status == 0 and not response.received_any:
                response.fail(HTTPError("closed", "connection closed before any response"))
            elif response.status and response.close_delimited:
                response.finish(keep_alive=False)  # a body without a length ends with the connection
            else:
                response.fail(HTTPError("closed", "connection closed mid-response"))
        self.client._forget(self)

    def pause_writing(self) -> None:  # request bodies are written in one go; nothing to pause
        pass

    # -- httptools callbacks -----------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        response.status = self.parser.get_status_code()
        headers: dict[str, str] = {}
        for name, value in self._headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._headers = []
        response.set_headers(headers)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        response.finish(keep_alive=self.parser.should_keep_alive())

    # -- helpers ---------------------------------------------------------------------------------------

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Response:
    """An upstream response whose status line and headers have arrived."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_decoder",
        "_done",
        "_error",
        "_first_timeout",
        "_headers_ready",
        "_keep_alive",
        "_sent_at",
        "_timeout",
        "_waiter",
        "buffered",
        "close_delimited",
        "complete",
        "headers",
        "last_activity",
        "received_any",
        "status",
        "whole",
    )

    def __init__(self, conn: _Connection, first_timeout: float, timeout: float) -> None:
        self._conn = conn
        self._first_timeout = first_timeout
        self._timeout = timeout
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self._chunks = conn.body
        self._chunks.clear()
        #: Raw bytes received since the consumer last took the body (what reading pauses on).
        self.buffered = 0
        #: The body is being read whole (`read`): reading never pauses.
        self.whole = False
        self.complete = False
        self.close_delimited = False
        self.received_any = False
        self._keep_alive = False
        self._error: HTTPError | None = None
        self._decoder: zlib._Decompress | None = None
        loop = asyncio.get_running_loop()
        self._headers_ready: asyncio.Future[None] = loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._sent_at = self.last_activity = time.monotonic()
        conn.client.watchdog.watch(self)

    # -- fed by the connection -----------------------------------------------------------------------------

    def set_headers(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.close_delimited = ("content-length" not in headers and "chunked" not in
                                headers.get("transfer-encoding", "").lower() and self.status not in (204, 304))
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("identity", ""):
            self.fail(HTTPError("protocol", f"unsupported content-encoding {encoding!r}"))
            return
        if not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def finish(self, keep_alive: bool) -> None:
        self.complete = True
        self._keep_alive = keep_alive
        self._unwatch()
        self._wake()
        if not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def fail(self, error: HTTPError) -> None:
        if self.complete or self._error is not None:
            return
        self._error = error
        self._unwatch()
        if not self._headers_ready.done():
            self._headers_ready.set_exception(error)
            self._headers_ready.exception()  # retrieved: a caller that gave up must not warn
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def check(self, now: float) -> bool:
        """Fail the exchange if it has been silent too long (the client's watchdog asks); False once it has
        ended, one way or another."""
        if self.complete or self._error is not None or self._done:
            return False
        if self.status:
            due, limit = self.last_activity + self._timeout, self._timeout
        else:
            due, limit = self._sent_at + self._first_timeout, self._first_timeout
        if now < due:
            return True
        self.fail(HTTPError("timeout", f"no answer from the provider for {limit:g} s"))
        self._conn._abort()
        return False

    def _unwatch(self) -> None:
        self._conn.client.watchdog.forget(self)

    # -- used by callers ---------------------------------------------------------------------------------

    async def wait_headers(self) -> None:
        await self._headers_ready

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool when the server allows it."""
        self.whole = True
        self._conn.resume()
        try:
            while not self.complete:
                if self._error is not None:
                    raise self._error
                await self._wait()
            if self._error is not None:
                raise self._error
            data = self._take()
            decoder = self._decoder
            return data if decoder is None else self._decode(decoder, data) + decoder.flush()
        finally:
            self._release()

    @property
    def ready(self) -> bool:
        """`next()` would return without waiting: body bytes are buffered, or the reply has ended."""
        return bool(self._chunks) or self.complete or self._error is not None

    async def next(self) -> bytes | None:
        """All of the body that has arrived since the last call (waiting for some if none has); None once
        the body has ended properly. Raises HTTPError if it did not. Handing over everything buffered at
        once lets a consumer that fell behind catch up in one step."""
        decoder = self._decoder
        while True:
            if self._chunks:
                data = self._take()
                self._conn.resume()
                if decoder is None:
                    return data
                data = self._decode(decoder, data)
                if data:
                    return data
                continue  # the encoded bytes so far decode to nothing yet
            if self.complete:
                tail = decoder.flush() if decoder is not None else b""
                if tail:
                    return tail  # the next call finds the body ended (a second flush gives nothing)
                self._release()
                return None
            if self._error is not None:
                self._release()
                raise self._error
            await self._wait()

    def _take(self) -> bytes:
        """Everything buffered, as one `bytes` (still encoded, if the body is); the buffer left empty."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        return data

    def _decode(self, decoder: zlib._Decompress, data: bytes) -> bytes:
        try:
            return decoder.decompress(data)
        except zlib.error as exc:
            error = HTTPError("protocol", f"undecodable {self.headers.get('content-encoding')} body: {exc}")
            self.fail(error)
            raise error from None

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _release(self) -> None:
        if self._done:
            return
        self._done = True
        self._unwatch()
        self._detach()
        conn = self._conn
        if self.complete and self._keep_alive and self._error is None and not conn.closed:
            conn.client._give_back(conn)
        else:
            conn._abort()

    def close(self) -> None:
        """Abandon the response: the connection is dropped, so the server sees the request cancelled."""
        if not self._done:
            self._done = True
            self._unwatch()
            self._detach()
            self._conn._abort()

    def _detach(self) -> None:
        """Let go of the connection's body buffer, which its next exchange fills."""
        self._conn.response = None
        self._conn.body.clear()
        self._chunks = []


class HTTPClient:
    def __init__(self, *, connect_timeout: float, read_timeout: float, first_byte_timeout: float | None = None) \
            -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.first_byte_timeout = read_timeout if first_byte_timeout is None else first_byte_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None
        #: Holds the exchanges in flight to their timeouts.
        self.watchdog: Watchdog[Response] = Watchdog(min(WATCH_TICK, self.first_byte_timeout / 4,
                                                         self.read_timeout / 4), time.monotonic)

    async def post(self, target: Target, head: bytes, body: bytes) -> Response:
        """Send `head` (request line and headers, built by `request_head`) and `body`; return once the
        response's status and headers have arrived."""
        for attempt in range(2):
            conn = await self._connection(target.origin)
            response = Response(conn, self.first_byte_timeout, self.read_timeout)
            conn.response = response
            assert conn.transport is not None
            conn.transport.write(head + body)
            try:
                await response.wait_headers()
            except HTTPError as exc:
                response.close()
                if attempt == 0 and exc.kind == "closed" and conn.reused and not response.received_any:
                    continue  # a keep-alive connection the server had already closed: once more, fresh
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    async def _connection(self, origin: tuple[str, str, int]) -> _Connection:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, conn = await loop.create_connection(
                    lambda: _Connection(self, origin), host, port,
                    ssl=self._tls() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError:
            raise HTTPError("connect", f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise HTTPError("connect", f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        conn.transport = transport  # uvloop may call connection_made after create_connection returns
        self._all.add(conn)
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _give_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) < POOL_SIZE:
            idle.append(conn)
        else:
            conn._abort()

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        self.watchdog.close()
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing


def request_head(target: Target, headers: Mapping[str, str], length: int, method: str = "POST") -> bytes:
    """The request line and headers of a request to `target` (a POST unless `method` says otherwise; a GET
    carries no body, so no Content-Length), ready to write."""
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    if method != "GET":
        lines.append(f"Content-Length: {length}")
    lines.append("Accept-Encoding: gzip, deflate")
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
