"""Reranking through the route: the planner's endpoints tried in order with the same fallbacks, health,
trace and generation record as chat, each speaking its provider's rerank dialect (`providers/rerank.py`)."""

from __future__ import annotations

import time

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import AllProvidersFailed, UpstreamError
from crossroads.ledger.accounting import Tab
from crossroads.providers.rerank import Ranking, parse_error, reranker_for
from crossroads.providers.transport import Transport
from crossroads.routing.dispatch import attempts
from crossroads.routing.health import Health
from crossroads.routing.outcome import EndsOnFailure, Outcome
from crossroads.routing.plan import Route
from crossroads.schema.rerank import RerankRequest
from crossroads.schema.usage import Usage


class Reranked(Outcome):
    ranking: Ranking

    def serve(self, model: Model, endpoint: Endpoint, ranking: Ranking, started: float,
              first_byte: float) -> Reranked:
        self.model, self.endpoint, self.ranking = model, endpoint, ranking
        self.started, self.first_byte = started, first_byte
        return self

    def reported(self) -> tuple[Usage | None, int, str | None, str | None, str | None]:
        tokens = self.ranking.tokens
        usage = None if tokens is None else Usage(prompt_tokens=tokens, completion_tokens=0)
        return usage, 0, self.ranking.upstream_id, None, None


class RerankDispatcher:
    def __init__(self, transport: Transport, health: Health) -> None:
        self.transport = transport
        self.health = health

    async def rerank(self, request: RerankRequest, route: Route, tab: Tab) -> Reranked:
        outcome = Reranked(request.route, tab, self.health)
        async with EndsOnFailure(outcome):
            failures: list[UpstreamError] = []
            for model, endpoint in attempts(route, failures):
                reranker = reranker_for(endpoint)
                started = time.monotonic()
                try:
                    upstream = await self.transport.post(reranker.build_request(request, endpoint),
                                                         endpoint.provider)
                    body = await upstream.read()
                    if upstream.status != 200:
                        raise parse_error(upstream.status, body, upstream.headers, endpoint)
                    ranking = reranker.parse_response(body, len(request.documents), endpoint)
                except UpstreamError as error:
                    outcome.attempt_failed(model, endpoint, error, started)
                    failures.append(error)
                    continue
                return outcome.serve(model, endpoint, ranking, started, time.monotonic())
            raise AllProvidersFailed(failures, list(request.models))


__all__ = ["RerankDispatcher", "Reranked"]
