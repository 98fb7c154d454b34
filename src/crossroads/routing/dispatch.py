"""Trying a route's endpoints in order until one serves: fallbacks, timeouts, and the routing trace.

Provider fallback (the next endpoint of the same model) happens on failures another provider may not have:
connection errors, timeouts (`first_byte_timeout`), 401/402/403/404/408/429, 5xx and malformed replies.
Model fallback (the next model of `models`) happens on any error. Both happen only before the first byte
of content reaches the client: a stream is handed to the API once its first content event has arrived, and
from then on a failure can only end the stream in-band.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import AllProvidersFailed, CrossroadsError, UpstreamError
from crossroads.providers.base import Adapter, Completion, Piece, StreamTranslator
from crossroads.providers.sse import Event, SSEDecoder
from crossroads.providers.transport import Transport, Upstream
from crossroads.routing.health import Health, Outcome
from crossroads.routing.plan import Route
from crossroads.schema.request import ChatRequest


@dataclass(slots=True)
class Attempt:
    """One entry of a generation's routing trace."""

    provider: str
    endpoint: str
    model: str
    status: int
    error_type: str | None
    latency_ms: int

    def public(self) -> dict[str, Any]:
        return {"provider": self.provider, "endpoint": self.endpoint, "model": self.model,
                "status": self.status, "error_type": self.error_type, "latency_ms": self.latency_ms}


@dataclass(slots=True)
class Served:
    model: Model
    endpoint: Endpoint
    completion: Completion
    trace: list[Attempt]
    started: float
    first_byte: float


@dataclass(slots=True)
class OpenStream:
    """An upstream stream whose first content has arrived; `pieces` are the chunks translated so far."""

    model: Model
    endpoint: Endpoint
    upstream: Upstream
    translator: StreamTranslator
    decoder: SSEDecoder
    pieces: list[Piece]
    trace: list[Attempt]
    started: float
    first_byte: float
    finished: bool = False

    @property
    def ready(self) -> bool:
        """`next_pieces()` would return without waiting for the upstream."""
        return self.finished or self.upstream.ready

    async def next_pieces(self) -> list[Piece] | None:
        """The next translated chunks (possibly none, when an upstream read held no whole event); None once
        the stream has ended properly. Raises `UpstreamError` if it breaks."""
        if self.finished:
            return None
        translator = self.translator
        data = await self.upstream.next()
        if data is not None:
            return _pieces(self.decoder.feed(data), translator)
        pieces = _pieces(self.decoder.flush(), translator)
        pieces.extend(translator.close())
        if translator.finish_reason is None:
            raise UpstreamError(502, "Provider ended the stream before it finished",
                                provider=self.endpoint.provider.name, error_type="provider_unavailable")
        self.finished = True
        return pieces


class Dispatcher:
    def __init__(self, adapters: Mapping[str, Adapter], transport: Transport, health: Health, *,
                 first_byte_timeout: float) -> None:
        self.adapters = adapters
        self.transport = transport
        self.health = health
        self.first_byte_timeout = first_byte_timeout

    async def complete(self, request: ChatRequest, route: Route) -> Served:
        trace: list[Attempt] = []
        failures: list[UpstreamError] = []
        for model, endpoint in _attempts(route, failures):
            adapter = self.adapters[endpoint.provider.wire_format]
            started = time.monotonic()
            try:
                # The transport enforces the first-byte timeout (headers of a whole reply) itself.
                upstream = await self.transport.post(adapter.build_request(request, endpoint),
                                                     endpoint.provider.name)
                first_byte = time.monotonic()
                body = await upstream.read()
                if upstream.status != 200:
                    raise adapter.parse_error(upstream.status, body, upstream.headers, endpoint)
                completion = adapter.parse_response(body, endpoint)
            except UpstreamError as error:
                self._failed(trace, failures, model, endpoint, error, started)
                continue
            finished = time.monotonic()
            tokens = completion.usage.completion_tokens if completion.usage else None
            self._succeeded(trace, model, endpoint, started, first_byte, finished, tokens)
            return Served(model, endpoint, completion, trace, started, first_byte)
        raise _all_failed(failures, request, trace)

    async def open_stream(self, request: ChatRequest, route: Route) -> OpenStream:
        """Open the first endpoint whose stream starts: its first content must arrive within
        `first_byte_timeout`."""
        trace: list[Attempt] = []
        failures: list[UpstreamError] = []
        for model, endpoint in _attempts(route, failures):
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.first_byte_timeout):
                    return await self._open(request, model, endpoint, trace, started)
            except TimeoutError:
                error = UpstreamError(504, "Provider did not start streaming in time",
                                      provider=endpoint.provider.name, error_type="timeout")
                self._failed(trace, failures, model, endpoint, error, started)
            except UpstreamError as error:
                self._failed(trace, failures, model, endpoint, error, started)
        raise _all_failed(failures, request, trace)

    async def _open(self, request: ChatRequest, model: Model, endpoint: Endpoint, trace: list[Attempt],
                    started: float) -> OpenStream:
        adapter = self.adapters[endpoint.provider.wire_format]
        upstream = await self.transport.post(adapter.build_request(request, endpoint), endpoint.provider.name)
        try:
            if upstream.status != 200:
                body = await upstream.read()
                raise adapter.parse_error(upstream.status, body, upstream.headers, endpoint)
            translator = adapter.stream_translator(request, endpoint)
            decoder = SSEDecoder()
            while (data := await upstream.next()) is not None:
                pieces = _pieces(decoder.feed(data), translator)
                if pieces:
                    return OpenStream(model, endpoint, upstream, translator, decoder, pieces, trace, started,
                                      time.monotonic())
            raise UpstreamError(502, "Provider ended the stream without sending anything",
                                provider=endpoint.provider.name, error_type="provider_unavailable")
        except BaseException:
            upstream.close()
            raise

    def finish_stream(self, stream: OpenStream, error: CrossroadsError | None, completion_tokens: int | None) \
            -> None:
        """Record how a stream that reached the client ended (for health and the trace)."""
        now = time.monotonic()
        status = 200 if error is None else error.code
        if error is None:
            self._succeeded(stream.trace, stream.model, stream.endpoint, stream.started, stream.first_byte, now,
                            completion_tokens)
        elif error.code != 499:  # 499: the client went away, which says nothing about the provider
            self.health.record(Outcome(stream.endpoint.key, status, self.health.now()))
            stream.trace.append(Attempt(stream.endpoint.provider.name, stream.endpoint.key, stream.model.id,
                                        status, error.kind,
                                        int((now - stream.started) * 1000)))
        else:
            stream.trace.append(Attempt(stream.endpoint.provider.name, stream.endpoint.key, stream.model.id,
                                        499, "cancelled", int((now - stream.started) * 1000)))

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def _failed(self, trace: list[Attempt], failures: list[UpstreamError], model: Model, endpoint: Endpoint,
                error: UpstreamError, started: float) -> None:
        now = time.monotonic()
        self.health.record(Outcome(endpoint.key, error.upstream_status, self.health.now()))
        trace.append(Attempt(endpoint.provider.name, endpoint.key, model.id, error.code,
                             error.kind, int((now - started) * 1000)))
        failures.append(error)

    def _succeeded(self, trace: list[Attempt], model: Model, endpoint: Endpoint, started: float,
                   first_byte: float, finished: float, tokens: int | None) -> None:
        generation = finished - started
        rate = tokens / generation if tokens and generation > 0 else None
        self.health.record(Outcome(endpoint.key, 200, self.health.now(), ttft=first_byte - started,
                                   tokens_per_second=rate))
        trace.append(Attempt(endpoint.provider.name, endpoint.key, model.id, 200, None,
                             int((finished - started) * 1000)))


def _pieces(events: list[Event], translator: StreamTranslator) -> list[Piece]:
    """The chunks a batch of upstream SSE events translates to (possibly none)."""
    pieces: list[Piece] = []
    for name, data in events:
        pieces.extend(translator.feed(name, data))
    return pieces


def _all_failed(failures: list[UpstreamError], request: ChatRequest, trace: list[Attempt]) -> AllProvidersFailed:
    error = AllProvidersFailed(failures, list(request.models))
    error.trace = [a.public() for a in trace]
    error.__cause__ = failures[-1]
    return error


def _attempts(route: Route, failures: list[UpstreamError]) -> Iterator[tuple[Model, Endpoint]]:
    """The (model, endpoint) pairs to try. After an error no other provider could avoid (a 400, say), the
    rest of that model's endpoints are skipped and the next model is tried."""
    for model, endpoints in route.groups:
        for index, endpoint in enumerate(endpoints):
            if index and failures and not failures[-1].fallback_worthy:
                break
            yield model, endpoint
        if failures and not route.allow_fallbacks:
            return
