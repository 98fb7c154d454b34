"""`POST /api/v1/rerank`, OpenRouter's shape: `{model, query, documents, top_n, return_documents}` →
`{id, model, provider, results: [{index, relevance_score, document: {text}}], usage}`, best first.

Authenticated, guarded, routed, limited, reserved, charged and recorded as every inference request is
(`api/oneshot.py`); only models whose output modality is `rerank` are routed. The guardrails' content
filters read the query and every document. A ranking is deterministic: a request that opts in to response
caching is answered from the cache, as embeddings are."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from msgspec import structs

from crossroads.api.cache import ResponseCache
from crossroads.api.oneshot import OneShotAPI
from crossroads.api.render import JSON
from crossroads.guardrails.enforce import Guard, Guardrails
from crossroads.ledger.accounting import Accountant, Charge, Generation, Tab
from crossroads.ledger.keys import KeyRing
from crossroads.ratelimit.base import Limiter
from crossroads.routing.plan import Fence, Planner, Route
from crossroads.routing.rerank import RerankDispatcher, Reranked
from crossroads.schema.request import ChatRequest
from crossroads.schema.rerank import RerankRequest, parse_rerank_request
from crossroads.settings import Settings

RERANK = "rerank"


class RerankAPI(OneShotAPI[RerankRequest, Reranked]):
    api = "rerank"
    operation = "rerank"
    cacheable = True

    def __init__(self, settings: Settings, keys: KeyRing, planner: Planner, dispatcher: RerankDispatcher,
                 accountant: Accountant, limiter: Limiter, guardrails: Guardrails | None = None,
                 cache: ResponseCache | None = None) -> None:
        super().__init__(settings, keys, planner, accountant, limiter, guardrails, cache)
        self.dispatcher = dispatcher

    def parse(self, body: Any) -> RerankRequest:
        return parse_rerank_request(body)

    def route_view(self, request: RerankRequest) -> ChatRequest:
        return request.route

    async def dispatch(self, request: RerankRequest, route: Route, tab: Tab) -> Reranked:
        return await self.dispatcher.rerank(request, route, tab)

    def reply(self, request: RerankRequest, served: Reranked, generation: Generation, charge: Charge) \
            -> web.Response:
        return _reply(request, served, generation, charge)

    def screen(self, request: RerankRequest, guard: Guard) -> RerankRequest:
        texts = (request.query, *request.documents)
        screened = guard.screen_texts(texts)
        if screened is texts:
            return request
        return structs.replace(request, query=screened[0], documents=screened[1:])

    def route(self, rerank: RerankRequest, fence: Fence | None) -> Route:
        return self.planner.plan(rerank.route, fence, output=RERANK)


def _reply(rerank: RerankRequest, served: Reranked, generation: Generation, charge: Charge) -> web.Response:
    usage = generation.usage
    assert usage is not None
    assert served.endpoint is not None
    scores = served.ranking.scores[:rerank.top_n] if rerank.top_n is not None else served.ranking.scores
    results: list[dict[str, Any]] = []
    for index, score in scores:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if rerank.return_documents:
            result["document"] = {"text": rerank.documents[index]}
        results.append(result)
    body = {
        "id": generation.id,
        "model": generation.model,
        "provider": served.endpoint.provider.name,
        "results": results,
        "usage": {"total_tokens": usage.prompt_tokens, "search_units": served.ranking.search_units or 1,
                  "cost": float(charge.usd)},
    }
    return web.Response(body=orjson.dumps(body), content_type=JSON, headers={"X-Generation-Id": generation.id})


__all__ = ["RERANK", "RerankAPI"]
