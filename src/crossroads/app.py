"""The application factory: build every stateful part once, in the app's lifespan, and wire the routes.

Nothing here is module-level state: `create_app(settings)` returns an aiohttp application whose startup
opens storage, loads keys and the catalog, starts the upstream client (and the built-in simulator when
it is in use), and whose cleanup closes them in reverse order, flushing the ledger last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from crossroads.api.activity import ActivityAPI
from crossroads.api.chat import ChatFace
from crossroads.api.completions import CompletionsFace
from crossroads.api.connections import ConnectionLimits
from crossroads.api.embeddings import EmbeddingsAPI
from crossroads.api.generation import GenerationAPI
from crossroads.api.inference import Inference
from crossroads.api.keys import KeysAPI
from crossroads.api.messages import MessagesFace, TokenCounter, app_of_agent
from crossroads.api.models import ModelsAPI
from crossroads.api.render import error_response
from crossroads.api.rerank import RerankAPI
from crossroads.api.responses import ResponsesFace
from crossroads.catalog import loader
from crossroads.catalog.types import Catalog
from crossroads.errors import CrossroadsError, MethodNotAllowed, NotFound, PayloadTooLarge
from crossroads.ledger.accounting import Accountant
from crossroads.ledger.budget import Budget, MemoryBudget
from crossroads.ledger.credits import Credits
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.shipper import Shipper
from crossroads.ledger.spool import Spool
from crossroads.ledger.writer import LedgerWriter
from crossroads.providers.auth import build_authenticators
from crossroads.providers.embedding import build_embedders
from crossroads.providers.registry import build_adapters
from crossroads.providers.transport import Transport
from crossroads.ratelimit.base import Limiter, MemoryLimiter
from crossroads.routing.dispatch import Dispatcher
from crossroads.routing.embedding import EmbeddingDispatcher
from crossroads.routing.health import Health
from crossroads.routing.plan import Planner, Policy, simulator_default
from crossroads.routing.rerank import RerankDispatcher
from crossroads.settings import Settings
from crossroads.storage.base import Store
from crossroads.storage.open import open_store

if TYPE_CHECKING:
    from crossroads.sim import SimServer
    from crossroads.storage.redis import RedisLink

log = logging.getLogger("crossroads")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Services:
    """Everything stateful, built once per application."""

    settings: Settings
    catalog: Catalog
    store: Store
    keys: KeyRing
    credits: Credits
    ledger: LedgerWriter
    health: Health
    planner: Planner
    dispatcher: Dispatcher
    transport: Transport
    limiter: Limiter
    budget: Budget
    #: Redis, when CROSSROADS_REDIS_URL is set: state shared with other gateway processes.
    link: RedisLink | None
    #: The built-in simulator, when it runs (CROSSROADS_SIMULATOR is not "off" and no
    #: CROSSROADS_PROVIDER_SIMULATOR_BASE_URL names a simulator elsewhere).
    simulator: SimServer | None


SERVICES = web.AppKey("services", Services)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as OpenRouter's envelope; never a stack trace or a framework's default page."""
    try:
        return await handler(request)
    except CrossroadsError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(NotFound(f"No such endpoint: {request.method} {request.path}"))
        if exc.status == 405:
            return error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.path}"))
        if exc.status == 413:
            return error_response(PayloadTooLarge("Request body is too large"))
        if exc.status < 400:
            raise
        return error_response(CrossroadsError(exc.reason))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(CrossroadsError("internal error"))


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(header_timeout=settings.header_timeout,
                            max_pending_per_client=settings.max_pending_per_client)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=settings.max_body_bytes + 1024)
    app.cleanup_ctx.append(_lifespan(settings))
    return app


def _lifespan(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        # Everything opened here is closed in reverse order, also when a later step fails.
        async with contextlib.AsyncExitStack() as stack:
            app[SERVICES] = await _open(settings, stack)
            _routes(app, app[SERVICES])
            yield

    return lifespan


async def _open(settings: Settings, stack: contextlib.AsyncExitStack) -> Services:
    simulator = None
    simulator_url = None
    if settings.simulator != "off":
        # CROSSROADS_PROVIDER_SIMULATOR_BASE_URL names a simulator running elsewhere; only without one does the
        # built-in simulator start.
        simulator_url = loader.simulator_base_url(settings.environ)
        if simulator_url is None:
            from crossroads.sim import SimServer

            simulator = SimServer()
            await simulator.start()
            stack.push_async_callback(simulator.close)
            simulator_url = simulator.url
    catalog = loader.load(settings.catalog_paths, settings.environ, simulator_url=simulator_url)
    store = await open_store(settings.database_url)
    stack.push_async_callback(store.close)
    spool = Spool(settings.spool_dir)
    ledger = LedgerWriter(spool, Shipper(spool, settings.database_url, log_level=settings.log_level,
                                         log_json=settings.log_json))
    # The shipper's first pass stores what crashed processes left in the spool, before any spend is read.
    await ledger.start()
    stack.push_async_callback(ledger.close)
    keys = KeyRing(store, settings.admin_key)
    await keys.load()
    credits = Credits(store)
    await credits.load()
    health = Health()
    link = None
    budget: Budget
    limiter: Limiter
    if settings.redis_url:
        # Imported only when used: a single-process deployment never loads the Redis client.
        from crossroads.ledger.key_events import KeyEvents
        from crossroads.ledger.shared_budget import RedisBudget
        from crossroads.ratelimit.redis import RedisLimiter
        from crossroads.routing.health_sync import HealthSync
        from crossroads.storage.redis import RedisLink

        link = RedisLink(settings.redis_url, settings.redis_namespace)
        await link.open()
        stack.push_async_callback(link.close)
        shared_budget = RedisBudget(link, store)
        shared_budget.start()
        stack.push_async_callback(shared_budget.close)
        budget = shared_budget
        limiter = RedisLimiter(link, credits.high_balance)
        KeyEvents(link, keys).start()
        HealthSync(link, health).start()
    else:
        budget = MemoryBudget()
        limiter = MemoryLimiter(credits.high_balance)
    adapters = build_adapters()
    policy = Policy(allow=catalog.routing_allow, deny=catalog.routing_deny, sort=catalog.routing_sort,
                    simulator_default=simulator_default(catalog, settings.simulator))
    planner = Planner(catalog, adapters, health, policy)
    transport = Transport(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                          first_byte_timeout=settings.first_byte_timeout,
                          authenticators=build_authenticators(catalog.providers.values()))
    await transport.start()
    stack.push_async_callback(transport.close)
    dispatcher = Dispatcher(adapters, transport, health, first_byte_timeout=settings.first_byte_timeout)
    refresher = asyncio.create_task(_refresh_keys(keys), name="crossroads-key-refresh")
    stack.callback(refresher.cancel)
    return Services(settings, catalog, store, keys, credits, ledger, health, planner, dispatcher, transport,
                    limiter, budget, link, simulator)


def _routes(app: web.Application, s: Services) -> None:
    accountant = Accountant(s.budget, s.ledger)
    chat = Inference(ChatFace(), s.settings, s.keys, s.planner, s.dispatcher, accountant, s.limiter)
    responses = Inference(ResponsesFace(), s.settings, s.keys, s.planner, s.dispatcher, accountant, s.limiter)
    models = ModelsAPI(s.catalog, s.dispatcher.adapters, s.health, s.planner)
    keys = KeysAPI(s.keys, s.credits, s.budget, s.ledger, s.store, s.limiter, s.settings.max_body_bytes)
    generation = GenerationAPI(s.keys, s.ledger, s.store)
    activity = ActivityAPI(s.keys, s.ledger, s.store)
    messages_face = MessagesFace(s.catalog)
    messages = Inference(messages_face, s.settings, s.keys, s.planner, s.dispatcher, accountant, s.limiter,
                         app_of_agent)
    count_tokens = TokenCounter(messages_face, s.settings, s.keys, s.planner, s.dispatcher.adapters, s.transport)
    # Routes are added during startup (they need the services); aiohttp allows it before the router is
    # frozen, which happens once startup completes.
    add = app.router.add_route
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/chat/completions", chat.handle)
        add("POST", f"{prefix}/messages", messages.handle)
        add("POST", f"{prefix}/messages/count_tokens", count_tokens.handle)
        add("POST", f"{prefix}/responses", responses.handle)
    completions = Inference(CompletionsFace(), s.settings, s.keys, s.planner, s.dispatcher, accountant, s.limiter)
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/completions", completions.handle)
    add("GET", "/api/v1/models", models.index)
    embeddings = EmbeddingsAPI(s.settings, s.keys, s.planner,
                               EmbeddingDispatcher(build_embedders(), s.transport, s.health), accountant, s.limiter,
                               models)
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/embeddings", embeddings.create)
    add("GET", "/api/v1/embeddings/models", embeddings.models)
    rerank = RerankAPI(s.settings, s.keys, s.planner, RerankDispatcher(s.transport, s.health), accountant, s.limiter)
    add("POST", "/api/v1/rerank", rerank.create)
    add("GET", "/api/v1/models/count", models.count)
    add("GET", "/api/v1/models/user", models.index)
    add("GET", "/api/v1/endpoints/zdr", models.zdr)
    add("GET", "/api/v1/models/{author}/{slug}/endpoints", models.endpoints)
    add("GET", "/api/v1/model/{author}/{slug}", models.one)
    add("GET", "/api/v1/providers", models.providers)
    add("GET", "/api/v1/keys", keys.index)
    add("POST", "/api/v1/keys", keys.create)
    add("GET", "/api/v1/keys/{hash}", keys.get)
    add("PATCH", "/api/v1/keys/{hash}", keys.update)
    add("DELETE", "/api/v1/keys/{hash}", keys.delete)
    add("GET", "/api/v1/key", keys.current)
    add("GET", "/api/v1/auth/key", keys.current)
    add("GET", "/api/v1/credits", keys.get_credits)
    add("POST", "/api/v1/credits", keys.grant)
    add("GET", "/api/v1/generation", generation.get)
    add("GET", "/api/v1/activity", activity.get)
    add("GET", "/health", _health)


async def _refresh_keys(keys: KeyRing, every: float = 1.0) -> None:
    """Keys created, changed or deleted by other processes take effect here within `every` seconds."""
    while True:
        await asyncio.sleep(every)
        try:
            await keys.refresh()
        except Exception:
            log.warning("could not refresh keys from storage", exc_info=True)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
