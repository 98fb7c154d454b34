"""The inference path of APIs that answer in one JSON body and never stream (embeddings, rerank):
authenticate → parse → guard → plan → admit → dispatch → render → finish, with the keys, guardrails,
planner, limits, reservations, ledger and generation record every inference request has.

A `OneShotAPI` subclass says how its body is parsed, which texts of it go upstream (for the guardrails'
content filters), which models and endpoints may serve it, how it is dispatched and how the reply is
written; the rest is here, once. Routing, limits and accounting read the parsed request's `ChatRequest`
view (`route_view`), as they read a chat request. An API whose replies are deterministic (`cacheable`) is
answered from the response cache when the request opts in (`api/cache.py`), once routing has checked the
model and the key's guardrails.
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.cache import ResponseCache, hit_reply
from crossroads.api.inference import open_tab, record_hit
from crossroads.api.render import error_response, whole_body
from crossroads.errors import CrossroadsError
from crossroads.guardrails.enforce import Guard, Guardrails
from crossroads.ledger.accounting import Accountant, Charge, Generation, Tab
from crossroads.ledger.keys import KeyRing
from crossroads.ratelimit.base import Limiter
from crossroads.routing.outcome import End, Outcome
from crossroads.routing.plan import Fence, Planner, Route
from crossroads.schema.request import ChatRequest
from crossroads.settings import Settings

RequestT = TypeVar("RequestT")
ServedT = TypeVar("ServedT", bound=Outcome)


class OneShotAPI(Generic[RequestT, ServedT]):
    #: The API's name in the metrics.
    api: str

    #: What its requests ask of a model, in OpenTelemetry's GenAI terms (`gen_ai.operation.name`).
    operation: str

    #: The same request always gets the same reply: the response cache may answer it.
    cacheable: bool = False

    def __init__(self, settings: Settings, keys: KeyRing, planner: Planner, accountant: Accountant,
                 limiter: Limiter, guardrails: Guardrails | None = None, cache: ResponseCache | None = None) \
            -> None:
        self.settings = settings
        self.keys = keys
        self.planner = planner
        self.accountant = accountant
        self.limiter = limiter
        #: Holds requests to their key's guardrails.
        self.guardrails = guardrails
        #: Response caching, for a `cacheable` API.
        self.cache = cache if self.cacheable else None

    # -- what an API provides ----------------------------------------------------------------------------

    def parse(self, body: Any) -> RequestT:
        raise NotImplementedError

    def route_view(self, request: RequestT) -> ChatRequest:
        raise NotImplementedError

    def screen(self, request: RequestT, guard: Guard) -> RequestT:
        """The request with the texts it sends upstream through the guardrails' content filters."""
        raise NotImplementedError

    def route(self, request: RequestT, fence: Fence | None) -> Route:
        """The endpoints that may serve the request; `fence` (the key's guardrails) keeps some out."""
        raise NotImplementedError

    async def dispatch(self, request: RequestT, route: Route, tab: Tab) -> ServedT:
        raise NotImplementedError

    def reply(self, request: RequestT, served: ServedT, generation: Generation, charge: Charge) -> web.Response:
        raise NotImplementedError

    # -- the path ------------------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        metrics = self.accountant.metrics
        metrics.in_flight += 1
        try:
            return await self._create(request, arrived)
        except CrossroadsError as error:
            metrics.refused(self.api, error, arrived)
            return error_response(error)
        finally:
            metrics.in_flight -= 1

    async def _create(self, request: web.Request, arrived: float) -> web.Response:
        headers = request.headers
        key = await self.keys.authenticate(headers.get("Authorization"))
        body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
        parsed = self.parse(body)
        guard = self.guardrails.admit(key) if self.guardrails is not None else None
        if guard is not None:
            parsed = self.screen(parsed, guard)
        view = self.route_view(parsed)
        route = self.route(parsed, guard)
        cache = self.cache
        lookup = cache.lookup(self.api, key, body, headers) if cache is not None else None
        if lookup is not None:
            assert cache is not None
            entry = await cache.find(lookup, headers)
            if entry is not None:
                generation = await record_hit(self.accountant, key, view, headers, api=self.api,
                                              operation=self.operation)
                return hit_reply(entry, generation.id)
        await self.limiter.check(key, route, view)
        hold = await self.accountant.admit(key, list(route.endpoints()), view.prompt_tokens_bound(), None)
        tab = open_tab(self.accountant, hold, route, headers, view, api=self.api, arrived=arrived,
                       operation=self.operation)
        try:
            served = await self.dispatch(parsed, route, tab)
            response = self.reply(parsed, served, tab.generation, await served.finish(End.DONE))
            if lookup is not None and cache is not None and (stored := whole_body(response)) is not None:
                await cache.put(lookup, stored)
                response.headers["X-OpenRouter-Cache-Status"] = "MISS"
            return response
        except CrossroadsError as error:
            return error_response(error, {"X-Generation-Id": tab.generation.id})
        finally:
            await tab.abandon()  # a hold never outlives its request, whatever ended it


__all__ = ["OneShotAPI"]
