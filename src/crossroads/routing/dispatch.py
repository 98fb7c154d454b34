"""Trying a route's endpoints in order until one serves: fallbacks, timeouts, and each attempt's outcome.

Provider fallback (the next endpoint of the same model) happens on failures another provider may not have:
connection errors, timeouts (`first_byte_timeout`), 401/402/403/404/408/429, 5xx and malformed replies.
Model fallback (the next model of `models`) happens on any error. Both happen only before the first byte
of content reaches the client: a stream is handed to the API once its first content event has arrived, and
from then on a failure can only end the stream in-band.

Every attempt is told to the request's `Outcome` (`routing/outcome.py`), which records health, the routing
trace and, when the request ends, the generation. When no endpoint serves, the dispatcher ends the outcome
itself (failed, or client gone) before raising; otherwise the caller ends it once the reply is out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import AllProvidersFailed, UpstreamError
from crossroads.ledger.accounting import Tab
from crossroads.plugins import fit
from crossroads.providers.base import Adapter
from crossroads.providers.transport import Transport
from crossroads.routing.health import Health
from crossroads.routing.outcome import EndsOnFailure, OpenStream, Served, pieces_of
from crossroads.routing.plan import Route
from crossroads.schema.request import ChatRequest


class Dispatcher:
    def __init__(self, adapters: Mapping[str, Adapter], transport: Transport, health: Health, *,
                 first_byte_timeout: float) -> None:
        self.adapters = adapters
        self.transport = transport
        self.health = health
        self.first_byte_timeout = first_byte_timeout

    async def complete(self, request: ChatRequest, route: Route, tab: Tab) -> Served:
        """The first whole reply; the caller ends the returned outcome (`finish`) once it is rendered."""
        outcome = Served(request, tab, self.health)
        async with EndsOnFailure(outcome):
            failures: list[UpstreamError] = []
            for model, endpoint in attempts(route, failures):
                adapter = self.adapters[endpoint.provider.wire_format]
                started = time.monotonic()
                try:
                    # The transport enforces the first-byte timeout (headers of a whole reply) itself.
                    sent = fit(request, endpoint) if request.plugins else request
                    upstream = await self.transport.post(adapter.build_request(sent, endpoint),
                                                         endpoint.provider)
                    first_byte = time.monotonic()
                    body = await upstream.read()
                    if upstream.status != 200:
                        raise adapter.parse_error(upstream.status, body, upstream.headers, endpoint)
                    completion = adapter.parse_response(body, endpoint)
                except UpstreamError as error:
                    outcome.attempt_failed(model, endpoint, error, started)
                    failures.append(error)
                    continue
                return outcome.serve(model, endpoint, completion, started, first_byte)
            raise AllProvidersFailed(failures, list(request.models))

    async def open_stream(self, request: ChatRequest, route: Route, tab: Tab) -> OpenStream:
        """Open the first endpoint whose stream starts: its first content must arrive within
        `first_byte_timeout`. The caller ends the returned outcome when the stream ends."""
        outcome = OpenStream(request, tab, self.health)
        async with EndsOnFailure(outcome):
            failures: list[UpstreamError] = []
            for model, endpoint in attempts(route, failures):
                started = time.monotonic()
                try:
                    async with asyncio.timeout(self.first_byte_timeout):
                        return await self._open(outcome, model, endpoint, started)
                except TimeoutError:
                    error = UpstreamError(504, "Provider did not start streaming in time",
                                          provider=endpoint.provider.name, error_type="timeout")
                    outcome.attempt_failed(model, endpoint, error, started)
                    failures.append(error)
                except UpstreamError as error:
                    outcome.attempt_failed(model, endpoint, error, started)
                    failures.append(error)
            raise AllProvidersFailed(failures, list(request.models))

    async def _open(self, outcome: OpenStream, model: Model, endpoint: Endpoint, started: float) -> OpenStream:
        adapter = self.adapters[endpoint.provider.wire_format]
        request = fit(outcome.request, endpoint) if outcome.request.plugins else outcome.request
        upstream = await self.transport.post(adapter.build_request(request, endpoint), endpoint.provider)
        try:
            if upstream.status != 200:
                body = await upstream.read()
                raise adapter.parse_error(upstream.status, body, upstream.headers, endpoint)
            translator = adapter.stream_translator(request, endpoint)
            decoder = translator.decoder()
            while (data := await upstream.next()) is not None:
                pieces = pieces_of(decoder.feed(data), translator)
                if pieces:
                    return outcome.open(model, endpoint, upstream, translator, decoder, pieces, started)
            raise UpstreamError(502, "Provider ended the stream without sending anything",
                                provider=endpoint.provider.name, error_type="provider_unavailable")
        except BaseException:
            upstream.close()
            raise


def attempts(route: Route, failures: list[UpstreamError]) -> Iterator[tuple[Model, Endpoint]]:
    """The (model, endpoint) pairs to try. After an error no other provider could avoid (a 400, say), the
    rest of that model's endpoints are skipped and the next model is tried."""
    for model, endpoints in route.groups:
        for index, endpoint in enumerate(endpoints):
            if index and failures and not failures[-1].fallback_worthy:
                break
            yield model, endpoint
        if failures and not route.allow_fallbacks:
            return
