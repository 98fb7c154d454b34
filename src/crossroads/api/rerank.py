"""`POST /api/v1/rerank`, OpenRouter's shape: `{model, query, documents, top_n, return_documents}` →
`{id, model, provider, results: [{index, relevance_score, document: {text}}], usage}`, best first.

Authenticated, routed, limited, reserved, charged and recorded as every inference request is; only models
whose output modality is `rerank` are routed."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.headers import first as first_header
from crossroads.api.render import JSON, error_response, generation_id
from crossroads.errors import CrossroadsError, InvalidParameter
from crossroads.ledger.accounting import Accountant, Charge, Generation, Tab
from crossroads.ledger.keys import KeyRing
from crossroads.ratelimit.base import Limiter
from crossroads.routing.outcome import End
from crossroads.routing.plan import Planner, Route
from crossroads.routing.rerank import RerankDispatcher, Reranked
from crossroads.schema.rerank import RerankRequest, parse_rerank_request
from crossroads.settings import Settings

RERANK = "rerank"


class RerankAPI:
    def __init__(self, settings: Settings, keys: KeyRing, planner: Planner, dispatcher: RerankDispatcher,
                 accountant: Accountant, limiter: Limiter) -> None:
        self.settings = settings
        self.keys = keys
        self.planner = planner
        self.dispatcher = dispatcher
        self.accountant = accountant
        self.limiter = limiter

    async def create(self, request: web.Request) -> web.Response:
        try:
            return await self._create(request)
        except CrossroadsError as error:
            return error_response(error)

    async def _create(self, request: web.Request) -> web.Response:
        headers = request.headers
        key = await self.keys.authenticate(headers.get("Authorization"))
        body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
        rerank = parse_rerank_request(body)
        route = self._route(rerank)
        await self.limiter.check(key, route, rerank.route)
        hold = await self.accountant.admit(key, list(route.endpoints()), rerank.route.prompt_tokens_bound(), None)
        tab = Tab(self.accountant, hold, Generation(
            id=generation_id(),
            model=route.groups[0][0].id,
            streamed=False,
            started=time.time(),
            http_referer=first_header(headers, "HTTP-Referer", "Referer"),
            app_title=first_header(headers, "X-OpenRouter-Title", "X-Title"),
            user_agent=first_header(headers, "User-Agent"),
            external_user=rerank.route.user,
            session_id=rerank.route.session_id or first_header(headers, "X-Session-Id"),
        ))
        try:
            served = await self.dispatcher.rerank(rerank, route, tab)
            return _reply(rerank, served, tab.generation, await served.finish(End.DONE))
        except CrossroadsError as error:
            return error_response(error, {"X-Generation-Id": tab.generation.id})
        finally:
            await tab.abandon()  # a hold never outlives its request, whatever ended it

    def _route(self, rerank: RerankRequest) -> Route:
        for slug in rerank.models:
            model, _ = self.planner.resolve(slug)
            if RERANK not in model.output_modalities:
                raise InvalidParameter("model", f"{model.id} is not a rerank model")
        return self.planner.plan(rerank.route)


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
