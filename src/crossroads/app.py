"""The application factory: build every stateful part once, in the app's lifespan, and wire the routes.

Nothing here is module-level state: `create_app(settings)` returns an aiohttp application whose startup
opens storage, loads keys and the catalog, starts the upstream client (and the built-in simulator when
it is in use), and whose cleanup closes them in reverse order, flushing the ledger last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from crossroads.api.access import SOURCES as ACCESS
from crossroads.api.access import Sources
from crossroads.api.activity import ActivityAPI
from crossroads.api.cache import MemoryStore, RedisStore, ResponseCache
from crossroads.api.chat import ChatFace
from crossroads.api.completions import CompletionsFace
from crossroads.api.connections import ConnectionLimits
from crossroads.api.embeddings import EmbeddingsAPI
from crossroads.api.fastlane import LANE_HEADERS, LANE_MIDDLEWARE, LANE_ROUTES
from crossroads.api.generation import GenerationAPI
from crossroads.api.generation_content import GenerationContentAPI
from crossroads.api.guardrails import GuardrailsAPI
from crossroads.api.health import HealthAPI
from crossroads.api.inference import Face, Inference
from crossroads.api.keys import KeysAPI
from crossroads.api.messages import MessagesFace, TokenCounter, app_of_agent
from crossroads.api.metrics import MetricsAPI
from crossroads.api.models import ModelsAPI
from crossroads.api.presets import PresetsAPI
from crossroads.api.render import error_response
from crossroads.api.rerank import RerankAPI
from crossroads.api.responses import ResponsesFace
from crossroads.catalog import loader
from crossroads.catalog.types import Catalog
from crossroads.dashboard.routes import Dashboard
from crossroads.dashboard.routes import Gateway as DashboardGateway
from crossroads.dashboard.sessions import Sessions
from crossroads.dashboard.views import Views
from crossroads.errors import CrossroadsError, MethodNotAllowed, NotFound, PayloadTooLarge
from crossroads.guardrails.book import GuardrailBook
from crossroads.guardrails.enforce import Guardrails
from crossroads.ledger import content
from crossroads.ledger.accounting import Accountant
from crossroads.ledger.budget import Budget, MemoryBudget
from crossroads.ledger.credits import Credits
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.shipper import Shipper
from crossroads.ledger.spool import Spool
from crossroads.ledger.writer import LedgerWriter
from crossroads.metrics.recorder import Metrics, NoMetrics
from crossroads.plugins import Plugins
from crossroads.presets import apply as presets
from crossroads.presets.book import PresetBook
from crossroads.providers.auth import build_authenticators
from crossroads.providers.embedding import build_embedders
from crossroads.providers.registry import build_adapters
from crossroads.providers.search import WebSearch
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
    from crossroads.catalog.refresh import CatalogRefresh
    from crossroads.sim import SimServer
    from crossroads.storage.link import Link

log = logging.getLogger("crossroads")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Services:
    """Everything stateful, built once per application."""

    settings: Settings
    catalog: Catalog
    store: Store
    keys: KeyRing
    presets: PresetBook
    guardrails: GuardrailBook
    credits: Credits
    ledger: LedgerWriter
    health: Health
    planner: Planner
    dispatcher: Dispatcher
    transport: Transport
    limiter: Limiter
    budget: Budget
    #: State shared with other gateway processes: Redis when CROSSROADS_REDIS_URL is set, else the
    #: supervisor's broker for a worker of `serve --workers N`.
    link: Link | None
    #: The built-in simulator, when it runs (CROSSROADS_SIMULATOR is not "off" and no
    #: CROSSROADS_PROVIDER_SIMULATOR_BASE_URL names a simulator elsewhere).
    simulator: SimServer | None
    #: What `GET /metrics` reports (does nothing with CROSSROADS_METRICS=off).
    metrics: Metrics
    #: The request plugins (`plugins/`) and the response cache (`api/cache.py`).
    plugins: Plugins
    cache: ResponseCache
    #: Where the built-in simulator (or the one named by the environment) listens, for catalog reloads.
    simulator_url: str | None = None
    #: The objects that read the catalog; `reload_catalog` hands each the new one.
    readers: tuple[CatalogReader, ...] = ()
    #: The run-time catalog refresh, when the operator allows one (CROSSROADS_CATALOG_REFRESH=on).
    refresh: CatalogRefresh | None = None


class CatalogReader(Protocol):
    catalog: Catalog


class Refreshing(Protocol):
    """Records held in memory that can be read again from storage."""

    async def refresh(self) -> None: ...


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
    app[LANE_ROUTES] = {}
    app[LANE_MIDDLEWARE] = errors
    app.cleanup_ctx.append(_lifespan(settings))
    if settings.debug_headers:
        app.on_response_prepare.append(_worker_header)
        app[LANE_HEADERS] = _worker_headers  # the same header on the fast lane's answers
    return app


async def _worker_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_worker_headers())


def _worker_headers() -> dict[str, str]:
    return {"X-Crossroads-Worker": str(os.getpid())}


def reload_catalog(app: web.Application) -> bool:
    """Read the catalog files again and route by them from the next request on (SIGHUP). Requests in flight
    keep the endpoints they were planned with. A catalog that does not load is logged and the old one kept."""
    services = app[SERVICES]
    settings = services.settings
    try:
        catalog = loader.load(settings.catalog_paths, settings.environ, simulator_url=services.simulator_url)
    except Exception as exc:
        log.error("catalog not reloaded, the current one stays: %s", exc)
        return False
    services.catalog = catalog
    services.planner.policy = _policy(catalog, settings)
    for reader in services.readers:
        reader.catalog = catalog
    log.info("catalog reloaded: %d models, %d providers", len(catalog.models), len(catalog.providers))
    return True


def _lifespan(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        # Everything opened here is closed in reverse order, also when a later step fails.
        async with contextlib.AsyncExitStack() as stack:
            services = app[SERVICES] = await _open(settings, stack)
            _routes(app, services)
            if services.refresh is not None:
                services.refresh.apply = functools.partial(_use_catalog, services)
                services.refresh.start()
                stack.push_async_callback(services.refresh.close)
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
    def build(imported: Path | None) -> Catalog:
        # An imported catalog goes under the operator's own files, so their corrections keep winning.
        paths = (imported, *settings.catalog_paths) if imported else settings.catalog_paths
        return loader.load(paths, settings.environ, simulator_url=simulator_url)

    refresh = None
    if settings.catalog_refresh and settings.catalog_url:
        # Imported only when allowed: the importer and its TOML writer are idle weight otherwise.
        from crossroads.catalog.refresh import CatalogRefresh

        refresh = CatalogRefresh(settings.catalog_url, settings.catalog_cache, build, lambda catalog: None,
                                 every=settings.catalog_refresh_interval)
    catalog = build(None) if refresh is None else refresh.initial()
    store = await open_store(settings.database_url)
    stack.push_async_callback(store.close)
    spool = Spool(settings.spool_dir)
    ledger = LedgerWriter(spool, Shipper(spool, settings.database_url, log_level=settings.log_level,
                                         log_json=settings.log_json, environ=settings.tracing_environ()))
    # What crashed processes left in the spool is stored (the shipper's first pass) before any spend is read.
    await ledger.start()
    stack.push_async_callback(ledger.close)
    metrics = Metrics() if settings.metrics else NoMetrics()
    metrics.ledger = ledger.backlog
    metrics.start()
    stack.push_async_callback(metrics.close)
    keys = KeyRing(store, settings.admin_key)
    await keys.load()
    book = PresetBook(store)
    await book.load()
    rails = GuardrailBook(store)
    await rails.load()
    credits = Credits(store)
    await credits.load()
    health = Health()
    link = await _open_link(settings, stack)
    budget: Budget
    limiter: Limiter
    if link is not None:
        from crossroads.ledger.shared_budget import RedisBudget
        from crossroads.ratelimit.redis import RedisLimiter
        from crossroads.routing.health_sync import HealthSync
        from crossroads.storage.changes import ChangeEvents

        shared_budget = RedisBudget(link, store)
        shared_budget.start()
        stack.push_async_callback(shared_budget.close)
        budget = shared_budget
        limiter = RedisLimiter(link, credits.high_balance)
        ChangeEvents(link, "keys", keys).start()
        ChangeEvents(link, "presets", book).start()
        ChangeEvents(link, "guardrails", rails).start()
        HealthSync(link, health).start()
    else:
        budget = MemoryBudget()
        limiter = MemoryLimiter(credits.high_balance)
    adapters = build_adapters()
    planner = Planner(catalog, adapters, health, _policy(catalog, settings))
    transport = Transport(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                          first_byte_timeout=settings.first_byte_timeout,
                          authenticators=build_authenticators(catalog.providers.values()))
    await transport.start()
    stack.push_async_callback(transport.close)
    dispatcher = Dispatcher(adapters, transport, health, first_byte_timeout=settings.first_byte_timeout)
    held: dict[str, Refreshing] = {"keys": keys, "presets": book, "guardrails": rails}
    refresher = asyncio.create_task(_refresh(store, held), name="crossroads-refresh")
    stack.callback(refresher.cancel)
    if settings.log_content:
        purger = asyncio.create_task(content.purge(store, settings.log_content_days), name="crossroads-purge")
        stack.callback(purger.cancel)
    plugins = Plugins(_web_search(settings, transport, simulator_url if planner.policy.simulator_default else None))
    cache = ResponseCache(_cache_store(settings, link), default_on=settings.response_cache,
                          ttl=settings.response_cache_ttl)
    return Services(settings, catalog, store, keys, book, rails, credits, ledger, health, planner, dispatcher,
                    transport, limiter, budget, link, simulator, metrics, plugins, cache, simulator_url,
                    refresh=refresh)


def _cache_store(settings: Settings, link: Link | None) -> MemoryStore | RedisStore:
    """Cached replies live in Redis when there is one (shared by every process), else in each process (the
    broker of `--workers` keeps no replies). Without Redis the Redis client is never imported."""
    if settings.redis_url is None or link is None:
        return MemoryStore()
    from crossroads.storage.redis import RedisLink

    assert isinstance(link, RedisLink)  # `_open_link` makes one whenever CROSSROADS_REDIS_URL is set
    return RedisStore(link)


def _web_search(settings: Settings, transport: Transport, simulator_url: str | None) -> WebSearch | None:
    """The `web` plugin's search backend: the operator's, else the Simulator's while it serves every model
    (no provider configured): real replies never cite simulated pages."""
    if settings.web_search_api is not None:
        return WebSearch(transport, settings.web_search_api, settings.web_search_url, settings.web_search_key)
    if simulator_url is not None:
        root = simulator_url.removesuffix("/").removesuffix("/v1")
        return WebSearch(transport, "exa", f"{root}/exa", "simulator")
    return None


async def _open_link(settings: Settings, stack: contextlib.AsyncExitStack) -> Link | None:
    """Redis when configured (shared across machines); else the supervisor's broker for a worker of
    `serve --workers N` (shared between the workers of this machine); else nothing to share."""
    link: Link
    if settings.redis_url:
        # Imported only when used: a single-process deployment never loads the Redis client.
        from crossroads.storage.redis import RedisLink

        redis = RedisLink(settings.redis_url, settings.redis_namespace)
        await redis.open()
        stack.push_async_callback(redis.close)
        link = redis
    elif settings.shared_socket is not None:
        from crossroads.storage.local import LocalLink

        local = LocalLink(settings.shared_socket, settings.redis_namespace)
        await local.open()
        stack.push_async_callback(local.close)
        link = local
    else:
        return None
    return link


def _policy(catalog: Catalog, settings: Settings) -> Policy:
    return Policy(allow=catalog.routing_allow, deny=catalog.routing_deny, sort=catalog.routing_sort,
                  simulator_default=simulator_default(catalog, settings.simulator))


def _routes(app: web.Application, s: Services) -> None:
    accountant = Accountant(s.budget, s.ledger, s.metrics,
                            keep_content=s.settings.otlp_content and s.settings.otlp_endpoint is not None)
    guardrails = Guardrails(s.guardrails, s.keys)

    def inference(face: Face, dialect: presets.Dialect,
                  app_of_agent: Callable[[str | None], str | None] | None = None) -> Inference:
        return Inference(face, s.settings, s.keys, s.planner, s.dispatcher, accountant, s.limiter, app_of_agent,
                         presets=presets.PresetResolver(s.presets, dialect), guardrails=guardrails,
                         plugins=s.plugins, cache=s.cache)

    chat = inference(ChatFace(), presets.CHAT)
    responses = inference(ResponsesFace(), presets.RESPONSES)
    models = ModelsAPI(s.catalog, s.dispatcher.adapters, s.health, s.planner)
    keys = KeysAPI(s.keys, s.credits, s.budget, s.ledger, s.store, s.limiter, s.settings.max_body_bytes)
    generation = GenerationAPI(s.keys, s.ledger, s.store)
    activity = ActivityAPI(s.keys, s.ledger, s.store)
    messages_face = MessagesFace(s.catalog)
    completions_face = CompletionsFace(s.catalog)
    messages = inference(messages_face, presets.MESSAGES, app_of_agent)
    count_tokens = TokenCounter(messages_face, s.settings, s.keys, s.planner, s.dispatcher.adapters, s.transport,
                                guardrails)
    # Routes are added during startup (they need the services); aiohttp allows it before the router is
    # frozen, which happens once startup completes.
    add = app.router.add_route
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/chat/completions", chat.handle)
        add("POST", f"{prefix}/messages", messages.handle)
        add("POST", f"{prefix}/messages/count_tokens", count_tokens.handle)
        add("POST", f"{prefix}/responses", responses.handle)
    completions = inference(completions_face, presets.COMPLETIONS)
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/completions", completions.handle)
    add("GET", "/api/v1/models", models.index)
    embeddings = EmbeddingsAPI(s.settings, s.keys, s.planner,
                               EmbeddingDispatcher(build_embedders(), s.transport, s.health), accountant, s.limiter,
                               models, guardrails, s.cache)
    for prefix in ("/api/v1", "/v1"):
        add("POST", f"{prefix}/embeddings", embeddings.create)
    add("GET", "/api/v1/embeddings/models", embeddings.models)
    rerank = RerankAPI(s.settings, s.keys, s.planner, RerankDispatcher(s.transport, s.health), accountant, s.limiter,
                       guardrails, s.cache)
    add("POST", "/api/v1/rerank", rerank.create)
    # The inference routes, answered at the connection level when a request is plain (`api/fastlane.py`).
    lane = app[LANE_ROUTES]
    for prefix in ("/api/v1", "/v1"):
        lane[f"{prefix}/chat/completions"] = chat.handle
        lane[f"{prefix}/messages"] = messages.handle
        lane[f"{prefix}/messages/count_tokens"] = count_tokens.handle
        lane[f"{prefix}/responses"] = responses.handle
        lane[f"{prefix}/completions"] = completions.handle
        lane[f"{prefix}/embeddings"] = embeddings.create
    lane["/api/v1/rerank"] = rerank.create
    add("GET", "/api/v1/models/count", models.count)
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
    stored = GenerationContentAPI(s.keys, s.ledger, s.store, s.settings.log_content, s.settings.max_body_bytes)
    add("GET", "/api/v1/generation/content", stored.content)
    add("POST", "/api/v1/generation/feedback", stored.feedback)
    add("GET", "/api/v1/activity", activity.get)
    # The web dashboard: its pages, sessions and API, answered through the handlers above.
    gateway = DashboardGateway(
        activity=activity.get, keys_index=keys.index, keys_create=keys.create, keys_update=keys.update,
        keys_delete=keys.delete, key=keys.current, credits=keys.get_credits, models=models.index, model=models.one,
        endpoints=models.endpoints, providers=models.providers, generation=generation.get, chat=chat.handle)
    views = Views(s.catalog, s.health, s.ledger, s.store)
    Dashboard(s.keys, views, gateway, s.settings.trusted_proxies,
              s.settings.max_body_bytes, Sessions(s.store, s.keys)).mount(app)
    preset_api = PresetsAPI(s.keys, s.presets, {"chat": chat, "messages": messages, "responses": responses},
                            s.settings.max_body_bytes)
    add("GET", "/api/v1/presets", preset_api.index)
    add("GET", "/api/v1/presets/{slug}", preset_api.get)
    add("GET", "/api/v1/presets/{slug}/versions", preset_api.versions)
    add("GET", "/api/v1/presets/{slug}/versions/{version}", preset_api.version)
    add("POST", "/api/v1/presets/{slug}/chat/completions", preset_api.from_body("chat"))
    add("POST", "/api/v1/presets/{slug}/messages", preset_api.from_body("messages"))
    add("POST", "/api/v1/presets/{slug}/responses", preset_api.from_body("responses"))
    rails = GuardrailsAPI(s.keys, s.guardrails, guardrails, models, s.settings.max_body_bytes)
    add("GET", "/api/v1/models/user", rails.user_models)
    add("GET", "/api/v1/guardrails", rails.index)
    add("POST", "/api/v1/guardrails", rails.create)
    add("GET", "/api/v1/guardrails/assignments/keys", rails.assignments)
    add("GET", "/api/v1/guardrails/{id}", rails.get)
    add("PATCH", "/api/v1/guardrails/{id}", rails.update)
    add("DELETE", "/api/v1/guardrails/{id}", rails.delete)
    add("GET", "/api/v1/guardrails/{id}/assignments/keys", rails.assignments)
    add("POST", "/api/v1/guardrails/{id}/assignments/keys", rails.assign)
    add("POST", "/api/v1/guardrails/{id}/assignments/keys/remove", rails.unassign)
    app[ACCESS] = Sources(s.ledger, s.keys)
    health = HealthAPI(s.store, s.catalog, s.settings.spool_dir)
    # Everything here that keeps the catalog: a reload (SIGHUP) hands each the new one.
    s.readers = (s.planner, models, messages_face, completions_face, health, views)
    add("GET", "/health", health.health)
    add("GET", "/ready", health.ready)
    if s.settings.metrics:
        add("GET", "/metrics", MetricsAPI(s.metrics, s.settings.metrics_token).get)


def _use_catalog(services: Services, catalog: Catalog) -> None:
    """Swap in a refreshed catalog: each part that reads it sees the new one from its next request on, while
    a request under way keeps the models and endpoints it already holds. The providers, and with them the
    routing policy, stay as they were: an imported catalog adds models, endpoints and prices only."""
    services.catalog = catalog
    for reader in services.readers:
        reader.catalog = catalog


async def _refresh(store: Store, held: Mapping[str, Refreshing], every: float = 1.0) -> None:
    """Keys, presets and guardrails created, changed or deleted by other processes take effect here within
    `every` seconds. Each poll reads the revisions table (one row per kind), and a kind's records only when its
    revision moved: the revision is read before the records, so they are at least as new as it says."""
    seen: dict[str, int] = {}
    while True:
        await asyncio.sleep(every)
        try:
            revisions = await store.revisions()
        except Exception:
            log.warning("could not read the revisions from storage", exc_info=True)
            continue
        for kind, holder in held.items():
            revision = revisions.get(kind)
            if revision is not None and seen.get(kind) == revision:
                continue
            try:
                await holder.refresh()
            except Exception:
                log.warning("could not refresh %s from storage", type(holder).__name__, exc_info=True)
            else:
                if revision is not None:
                    seen[kind] = revision

