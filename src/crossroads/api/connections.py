"""Client connections: what happens before and around a request that the application never sees.

aiohttp's connection protocol, with four changes a gateway facing arbitrary clients needs:

- **Malformed requests** (a bad request line, a bare CR, a header over the size limit, bad chunking) are
  answered with OpenRouter's JSON error envelope and logged as one line at INFO, without the raw bytes
  (which may hold an `Authorization` header). aiohttp answers `text/plain` and logs an ERROR with the
  request's bytes in the traceback — any client could fill the error log, and leak its key into it.
- **A header timeout** (`CROSSROADS_HEADER_TIMEOUT`): a connection has that long from its opening, or from
  the first byte of a later request on a kept-alive connection, to send complete request headers; then it
  gets 408 (if it sent anything) and is closed. Bodies are bounded by `CROSSROADS_BODY_TIMEOUT`.
  One watchdog per server (`crossroads/watchdog.py`) checks the connections still waiting for a complete
  request every `WATCH_TICK` seconds (less if the header timeout is short), so these bounds act up to one
  tick late and a request costs no timer of its own.
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
from crossroads.api.fastlane import LANE_HEADERS, LANE_ROUTES, WAIT, Head, Lane, LaneRequest, LaneStream, write_whole
from crossroads.api.render import error_response
from crossroads.errors import BadRequest, CrossroadsError, RequestTimeout
from crossroads.watchdog import Watchdog

log = logging.getLogger("crossroads.connections")

#: Seconds without a complete request after which a connection counts as slow.
SLOW_AFTER: Final = 1.0
#: How long an idle kept-alive connection stays open (nginx's default).
KEEPALIVE_TIMEOUT: Final = 75.0
#: Seconds between two checks of the connections waiting for a complete request (at most).
WATCH_TICK: Final = 0.25
#: Bytes that may arrive behind a lane request while it is answered before reading pauses.
HOLD_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    #: Slow connections one client address may hold; 0 means no bound.
    max_pending_per_client: int = 64


class GatewayServer(web.Server):
    """aiohttp's server with `GatewayProtocol` connections and the per-address count of slow ones."""

    def __init__(self, *args: Any, limits: ConnectionLimits, lane: Lane | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        #: The inference routes answered at the connection level (`api/fastlane.py`).
        self.lane = lane
        self.slow: Counter[str] = Counter()
        #: Checks the connections whose request is not complete yet.
        self.watchdog: Watchdog[GatewayProtocol] = Watchdog(min(WATCH_TICK, SLOW_AFTER / 4,
                                                                limits.header_timeout / 4), self._loop.time)

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self._loop, **self._kwargs)

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109  # aiohttp's signature
        self.watchdog.close()
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
                             limits=self._limits, lane=self._lane(), **server._kwargs)

    def _lane(self) -> Lane | None:
        """The fast lane for the app's lane routes (`api/fastlane.py`), unless the app has response hooks
        whose headers the lane cannot add."""
        app = self._app
        routes = app.get(LANE_ROUTES)
        headers = app.get(LANE_HEADERS)
        if not routes or (app.on_response_prepare and not callable(headers)):
            return None
        return Lane(app, routes, headers() if callable(headers) else None)


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
        #: The fast lane (`api/fastlane.py`): the start of a request whose head is not whole yet, the request
        #: being answered, and bytes that came after it (taken once it is answered).
        self._lane_head: bytearray | None = None
        self._lane_request: LaneRequest | None = None
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._lane_paused = False

    # -- connection events ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple | list) and peer else ""
        self._await_request()

    def data_received(self, data: bytes) -> None:
        if self._lane_request is not None:
            request = self._lane_request
            if not request.complete:
                data = request.feed(data)
                if request.complete:
                    self._request_complete()
            if data:
                self._hold(data)
            return
        lane = self._gateway.lane
        if self._lane_head is not None:
            assert lane is not None
            self._lane_head += data
            self._take(lane, bytes(self._lane_head))
            return
        if not self._pending and self._received == self._answered:
            self._await_request()  # the first bytes of another request on a kept-alive connection
        if lane is not None and not self._sent_bytes and self._received == self._answered and not self._messages \
                and not self._request_in_progress and not self._close and not self._force_close:
            self._sent_bytes = True
            self._take(lane, data)
            return
        self._sent_bytes = True
        self._to_aiohttp(data)

    def _to_aiohttp(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        arrived = len(self._messages) - queued
        if arrived > 0:
            self._received += arrived
            if self._headers_pending:
                self._headers_arrived()

    # -- the fast lane -------------------------------------------------------------------------------------

    def _take(self, lane: Lane, data: bytes) -> None:
        """The bytes of a request from its first: a lane request once its head is whole, aiohttp's if it is
        not one."""
        head = lane.head(data)
        if head == WAIT:
            if self._lane_head is None:
                self._lane_head = bytearray(data)
            return
        self._lane_head = None
        if not isinstance(head, Head):
            self._to_aiohttp(data)
            return
        self._headers_pending = False
        self._received += 1
        request = self._lane_request = LaneRequest(lane, head, self)
        rest = request.feed(data[head.body_start:])
        if request.complete:
            self._request_complete()
        request.task = self._loop.create_task(self._answer(lane, head, request))
        if rest:
            self._hold(rest)

    def _hold(self, data: bytes) -> None:
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > HOLD_BYTES and not self._lane_paused:
            self._lane_paused = True
            self._pause_transport_reading()

    async def _answer(self, lane: Lane, head: Head, request: LaneRequest) -> None:
        loop = self._loop
        started = loop.time()
        self._request_in_progress = True
        self._current_request = request  # type: ignore[assignment]  # aiohttp cancels it through `_cancel`
        # aiohttp's idle-connection timer must not take the connection while its own loop waits and a lane
        # request is answered (a long stream outlasts it): it does nothing while keep-alive is off.
        self._keepalive = False
        response: web.StreamResponse | None = None
        reset = False
        try:
            response = await lane.handle(request, head.handler)
            if isinstance(response, LaneStream):
                if not response.prepared:
                    await response.prepare(request)
                await response.write_eof()
            elif isinstance(response, web.Response):
                if self.transport is None or self.transport.is_closing():
                    raise ConnectionResetError("the client went before the answer")
                write_whole(self.transport, response, request)
            else:
                raise TypeError(f"a lane handler returned {type(response).__name__}")
        except ConnectionResetError:
            reset = True
        except Exception as exc:
            reset = True
            if not (isinstance(response, LaneStream) and response.prepared) and self.transport is not None:
                self.log_exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
                response = error_response(CrossroadsError("internal error"))
                write_whole(self.transport, response, request)
            else:
                self.log_exception("unhandled error while streaming on %s", request.path, exc_info=exc)
        finally:
            self._current_request = None
            self._request_in_progress = False
            if self._handler_waiter is not None and not self._handler_waiter.done():
                self._handler_waiter.set_result(None)
            self._lane_request = None
            self._answered += 1
        if response is not None:
            self.log_access(request, response, started)  # type: ignore[arg-type]
        if reset or request.close or not request.complete or self._close or self._force_close:
            self.force_close()  # the answer (if any) is flushed first; an unread body leaves no way to go on
            return
        self._keepalive = True
        close_time = loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._held_bytes = 0
            if self._lane_paused:
                self._lane_paused = False
                self._resume_transport_reading()
            self.data_received(data)

    @property
    def writing_paused(self) -> bool:
        """The transport's buffer is full: a writer waits (`_drain_helper`) before writing more."""
        return self._paused

    async def finish_response(self, request: Any, resp: web.StreamResponse, start_time: float | None) \
            -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's Protocol allows a bool
        # The client shut down its sending side. HTTP allows it to read the answer still: keep the transport
        # open for writing while a request is waiting to be answered, and close it once that is done.
        if self._lane_head is not None:  # a head that will never be whole: aiohttp answers what came
            data, self._lane_head = bytes(self._lane_head), None
            self._to_aiohttp(data)
        if self._received == self._answered:
            return False  # nothing to answer: let the transport close
        request = self._current_request
        if request is not None and not request.content.is_eof():
            request.content.feed_eof()  # no more body will come; what came is all there is
        self.close()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._request_complete()
        self._lane_head = None
        self._held.clear()
        super().connection_lost(exc)  # cancels a lane request's task, as aiohttp's own handler's

    # -- the request's progress ----------------------------------------------------------------------------

    def _await_request(self) -> None:
        self._pending = self._headers_pending = True
        self._sent_bytes = False
        self._since = self._loop.time()
        self._gateway.watchdog.watch(self)

    def _headers_arrived(self) -> None:
        self._headers_pending = False
        payload = self._messages[-1][1]
        if payload.is_eof():
            self._request_complete()
        else:
            payload.on_eof(self._request_complete)

    def _request_complete(self) -> None:
        self._pending = self._headers_pending = False
        self._gateway.watchdog.forget(self)
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
