"""Client connections: what happens before and around a request that the application never sees.

aiohttp's connection protocol, with four changes a gateway facing arbitrary clients needs:

- **Malformed requests** (a bad request line, a bare CR, a header over the size limit, bad chunking) are
  answered with OpenRouter's JSON error envelope and logged as one line at INFO, without the raw bytes
  (which may hold an `Authorization` header). aiohttp answers `text/plain` and logs an ERROR with the
  request's bytes in the traceback — any client could fill the error log, and leak its key into it.
- **A header timeout** (`CROSSROADS_HEADER_TIMEOUT`): a connection has that long from its opening, or from
  the first byte of a later request on a kept-alive connection, to send complete request headers; then it
  gets 408 (if it sent anything) and is closed. Bodies are bounded by `CROSSROADS_BODY_TIMEOUT`.
  One watchdog per server checks the connections still waiting for a complete request every
  `WATCH_TICK` seconds (less if the header timeout is short), so these bounds act up to one tick late and a
  request costs no timer of its own.
- **A bound on slow connections per client address** (`CROSSROADS_MAX_PENDING_PER_CLIENT`): connections
  that have spent more than `SLOW_AFTER` seconds without completing their request (headers and body) count
  against their address; one over the bound is closed at once. Prompt clients never count — a burst of
  thousands of connections from one load generator or proxy is served as before.
- **Half-closed connections**: a client that sends its request and then shuts down its sending side
  (`shutdown(SHUT_WR)`, as curl and some proxies do) still gets its response; the connection closes after.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from crossroads.api.access import AccessLog, access_logger
from crossroads.errors import BadRequest, CrossroadsError, RequestTimeout

log = logging.getLogger("crossroads.connections")

#: Seconds without a complete request after which a connection counts as slow.
SLOW_AFTER: Final = 1.0
#: How long an idle kept-alive connection stays open (nginx's default).
KEEPALIVE_TIMEOUT: Final = 75.0
#: Seconds between two checks of the connections waiting for a complete request (at most).
WATCH_TICK: Final = 0.25


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    #: Slow connections one client address may hold; 0 means no bound.
    max_pending_per_client: int = 64


class GatewayServer(web.Server):
    """aiohttp's server with `GatewayProtocol` connections and the per-address count of slow ones."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.slow: Counter[str] = Counter()
        #: Connections whose request is not complete yet, and the watchdog that checks them while any are.
        self.waiting: set[GatewayProtocol] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._tick = max(0.001, min(WATCH_TICK, SLOW_AFTER / 4, limits.header_timeout / 4))

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self._loop, **self._kwargs)

    def wait(self, protocol: GatewayProtocol) -> None:
        self.waiting.add(protocol)
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._tick, self._sweep)

    def _sweep(self) -> None:
        now = self._loop.time()
        waiting = self.waiting
        for protocol in list(waiting):
            if not protocol.check(now):
                waiting.discard(protocol)
        self._watchdog = self._loop.call_later(self._tick, self._sweep) if waiting else None

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109  # aiohttp's signature
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await super().shutdown(timeout)


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose server is a `GatewayServer`, logging each request with `api/access.py`'s line
    (`access_log=None`: no access log)."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        kwargs.setdefault("access_log_class", AccessLog)
        kwargs.setdefault("access_log", access_logger())
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return GatewayServer(server.request_handler, request_factory=server.request_factory,
                             handler_cancellation=server.handler_cancellation, loop=server._loop,
                             limits=self._limits, **server._kwargs)


class GatewayProtocol(RequestHandler):
    def __init__(self, manager: GatewayServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._gateway = manager
        self._peer = ""
        #: A request is incomplete: headers (`_headers_pending`) or its body.
        self._pending = False
        self._headers_pending = False
        self._sent_bytes = False
        self._slow = False
        #: When the request still awaited began to be awaited (the loop's clock).
        self._since = 0.0
        #: Requests whose headers arrived, and requests answered, on this connection.
        self._received = self._answered = 0

    # -- connection events ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple | list) and peer else ""
        self._await_request()

    def data_received(self, data: bytes) -> None:
        if not self._pending and self._received == self._answered:
            self._await_request()  # the first bytes of another request on a kept-alive connection
        queued = len(self._messages)
        self._sent_bytes = True
        super().data_received(data)
        arrived = len(self._messages) - queued
        if arrived > 0:
            self._received += arrived
            if self._headers_pending:
                self._headers_arrived()

    async def finish_response(self, request: Any, resp: web.StreamResponse, start_time: float | None) \
            -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's Protocol allows a bool
        # The client shut down its sending side. HTTP allows it to read the answer still: keep the transport
        # open for writing while a request is waiting to be answered, and close it once that is done.
        if self._received == self._answered:
            return False  # nothing to answer: let the transport close
        request = self._current_request
        if request is not None and not request.content.is_eof():
            request.content.feed_eof()  # no more body will come; what came is all there is
        self.close()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._request_complete()
        super().connection_lost(exc)

    # -- the request's progress ----------------------------------------------------------------------------

    def _await_request(self) -> None:
        self._pending = self._headers_pending = True
        self._sent_bytes = False
        self._since = self._loop.time()
        self._gateway.wait(self)

    def _headers_arrived(self) -> None:
        self._headers_pending = False
        payload = self._messages[-1][1]
        if payload.is_eof():
            self._request_complete()
        else:
            payload.on_eof(self._request_complete)

    def _request_complete(self) -> None:
        self._pending = self._headers_pending = False
        self._gateway.waiting.discard(self)
        if self._slow:
            self._slow = False
            slow = self._gateway.slow
            slow[self._peer] -= 1
            if slow[self._peer] <= 0:
                del slow[self._peer]

    def check(self, now: float) -> bool:
        """Act on a request that has waited too long (the server's watchdog asks at `now`); False once no
        request is awaited."""
        if not self._pending:
            return False
        waited = now - self._since
        limits = self._gateway.limits
        if self._headers_pending and waited >= limits.header_timeout:
            self._headers_pending = False  # answered once; the connection is closing
            self._header_timeout()
            return False
        if not self._slow and limits.max_pending_per_client and waited >= SLOW_AFTER:
            self._became_slow()
        return self._pending

    def _became_slow(self) -> None:
        slow = self._gateway.slow
        slow[self._peer] += 1
        self._slow = True
        limit = self._gateway.limits.max_pending_per_client
        if slow[self._peer] > limit:
            log.info("closed a connection from %s: %d of its connections are waiting for a complete request "
                     "(CROSSROADS_MAX_PENDING_PER_CLIENT is %d)", self._peer or "a local socket", slow[self._peer],
                     limit)
            self.force_close()

    def _header_timeout(self) -> None:
        if self.transport is None:
            return
        log.debug("closed a connection from %s: no complete request headers within %g s",
                  self._peer or "a local socket", self._gateway.limits.header_timeout)
        if self._sent_bytes:
            self.transport.write(_raw_response(RequestTimeout(
                f"The request headers did not arrive within {self._gateway.limits.header_timeout:g} seconds")))
        self.force_close()

    # -- errors the HTTP parser finds ----------------------------------------------------------------------

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
            error = CrossroadsError("internal error")
        else:
            reason = _reason(exc, message)
            log.info("rejected a malformed HTTP request from %s: %s", request.remote or "a local socket", reason)
            error = BadRequest(f"Malformed HTTP request: {reason}")
        if request.writer.output_size > 0:
            raise ConnectionError("the response has begun; no error response can follow")
        response = web.Response(status=error.code, body=error.body(), content_type="application/json")
        response.force_close()
        return response


def _reason(exc: BaseException | None, message: str | None) -> str:
    """What was wrong, in a few words and without the request's bytes: the first line of the parser's
    message, cut before anything it quotes."""
    text = getattr(exc, "message", None) or message or type(exc).__name__
    line = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    for mark in ("'", '"', "b'", ":"):
        cut = line.find(mark)
        if cut > 0:
            line = line[:cut]
    return line.strip().rstrip(",.;") or type(exc).__name__


def _raw_response(error: CrossroadsError) -> bytes:
    """A whole HTTP/1.1 response for a connection that has no request object to answer through."""
    body = error.body()
    return (f"HTTP/1.1 {error.code} {HTTPStatus(error.code).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


__all__ = ["ConnectionLimits", "GatewayRunner", "GatewayServer"]
