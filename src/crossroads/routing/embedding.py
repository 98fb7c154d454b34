"""Embeddings through the route: the same planner, fallbacks, health, trace and generation record as chat,
with an embedder (`providers/embedding.py`) in place of a chat adapter.

An endpoint serves the whole request or nothing: its batches (inputs beyond the format's limit are split)
are sent together, and if any fails the attempt fails as a whole — the replies of the others are dropped,
nothing of it is charged, and the next endpoint is tried with every input, as `routing/dispatch.py` tries
endpoints for chat. Vectors come back in the client's order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import AllProvidersFailed, UpstreamError
from crossroads.ledger.accounting import Tab
from crossroads.providers.embedding import Embedder, Embedders, EmbeddingBatch, Vector, batches
from crossroads.providers.transport import Transport
from crossroads.routing.dispatch import attempts
from crossroads.routing.health import Health
from crossroads.routing.outcome import EndsOnFailure, Outcome
from crossroads.routing.plan import Route
from crossroads.schema.embeddings import EmbeddingsRequest, Item
from crossroads.schema.usage import Usage


class Embedded(Outcome):
    """The vectors one endpoint gave, in input order, with the usage its batches reported together."""

    vectors: list[Vector]
    usage: Usage | None
    upstream_id: str | None
    #: The `data` elements as the provider wrote them, when one reply holds them in the gateway's own form.
    listing: memoryview | None

    def serve(self, model: Model, endpoint: Endpoint, replies: Sequence[EmbeddingBatch], started: float,
              first_byte: float) -> Embedded:
        self.model, self.endpoint = model, endpoint
        self.started, self.first_byte = started, first_byte
        self.vectors = [vector for reply in replies for vector in reply.vectors]
        tokens = [reply.prompt_tokens for reply in replies]
        # One batch without a count makes the whole count unknown: it is estimated rather than half-reported.
        self.usage = None if None in tokens else Usage(prompt_tokens=sum(t or 0 for t in tokens),
                                                       completion_tokens=0)
        self.upstream_id = replies[0].upstream_id
        self.listing = replies[0].listing if len(replies) == 1 else None
        return self

    def reported(self) -> tuple[Usage | None, int, str | None, str | None, str | None]:
        return self.usage, 0, self.upstream_id, None, None


class EmbeddingDispatcher:
    def __init__(self, embedders: Embedders, transport: Transport, health: Health) -> None:
        self.embedders = embedders
        self.transport = transport
        self.health = health

    async def embed(self, request: EmbeddingsRequest, route: Route, tab: Tab) -> Embedded:
        """The first endpoint that embeds every input; the caller ends the outcome once it is rendered."""
        outcome = Embedded(request.route, tab, self.health)
        async with EndsOnFailure(outcome):
            failures: list[UpstreamError] = []
            for model, endpoint in attempts(route, failures):
                embedder = self.embedders[endpoint]
                started = time.monotonic()
                try:
                    parts = batches(request.inputs, embedder.batch_size)
                    if len(parts) == 1:
                        replies = [await self._send(embedder, request, parts[0], endpoint)]
                    else:
                        replies = await _together([self._send(embedder, request, part, endpoint) for part in parts])
                except UpstreamError as error:
                    outcome.attempt_failed(model, endpoint, error, started)
                    failures.append(error)
                    continue
                return outcome.serve(model, endpoint, replies, started, time.monotonic())
            raise AllProvidersFailed(failures, list(request.models))

    async def _send(self, embedder: Embedder, request: EmbeddingsRequest, inputs: Sequence[Item],
                    endpoint: Endpoint) -> EmbeddingBatch:
        upstream = await self.transport.post(embedder.build_request(request, inputs, endpoint),
                                             endpoint.provider)
        body = await upstream.read()
        if upstream.status != 200:
            raise embedder.parse_error(upstream.status, body, upstream.headers, endpoint)
        return embedder.parse_response(body, len(inputs), endpoint)


async def _together(sends: list[Coroutine[Any, Any, EmbeddingBatch]]) -> list[EmbeddingBatch]:
    """Every batch's reply, in order; the first failure cancels the batches still out and is raised."""
    tasks = [asyncio.ensure_future(send) for send in sends]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


__all__ = ["Embedded", "EmbeddingDispatcher"]
