"""The simulator's HTTP server: application factory, control API, request recording and `SimServer`.

Generation endpoints (one per wire format):

    POST /v1/chat/completions           OpenAI Chat Completions
    POST /v1/messages                   Anthropic Messages
    POST /v1/messages/count_tokens      Anthropic's token count for a Messages request
    POST /v1beta/models/{model}:generateContent           Gemini (also under /v1)
    POST /v1beta/models/{model}:streamGenerateContent     Gemini, streamed (`?alt=sse` for SSE; also /v1)
    POST /v1/embeddings                 OpenAI embeddings (deterministic vectors)
    POST /v1beta/models/{model}:batchEmbedContents        Gemini embeddings (also :embedContent; also /v1)
    POST /v2/embed                      Cohere embeddings (v2)
    POST /v1/rerank, /v2/rerank, /rerank                   rerank: Jina's shape, Cohere's v2, TEI's
    POST /model/{model}/invoke          Amazon Bedrock InvokeModel, Claude (and /invoke-with-response-stream)
    POST /model/{model}/converse        Amazon Bedrock Converse, any model (and /converse-stream)
    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent   Vertex AI, Gemini
                                        (and :streamGenerateContent)
    POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict    Vertex AI, Claude
                                        (and :streamRawPredict)
    POST /openai/deployments/{deployment}/chat/completions    Azure OpenAI (and the v1 API's
                                        /openai/v1/chat/completions)
    GET  /v1/models                     an OpenAI model list (a fixed few plus every model seen)
    POST /exa/search, /tavily/search    web search in Exa's and Tavily's shapes (`sim/search.py`)
    GET  /brave/res/v1/web/search       ... in Brave Search's
    GET  /searxng/search                ... in SearXNG's

Control API:

    PUT    /_sim/behaviours/{model}     body: directive string; applies to requests naming {model}
    GET    /_sim/behaviours             {model: directives}
    DELETE /_sim/behaviours/{model}     forget one model's behaviour
    DELETE /_sim/behaviours             forget all behaviours
    GET    /_sim/requests               [{"method", "path", "headers", "body", "query"}], oldest first (last 1,000)
    DELETE /_sim/requests               forget recorded requests
    GET    /_sim/stats                  {"requests", "completed", "cancelled", "dropped", "in_flight"}
    POST   /_sim/reset                  all of the above back to the start
    GET    /_sim/health                 {"status": "ok"}

Every request to a generation endpoint is recorded (header names lower-cased, body as parsed JSON, or the
raw text when it is not JSON) and counted: `completed` once its answer was fully written, `cancelled`
when the client went away first, `dropped` when a `drop_after` directive cut the connection. Disconnects
are noticed while the handler waits because the runner is created with `handler_cancellation=True`
(aiohttp cancels the handler when the client goes away), and while it writes because aiohttp raises on a
closed transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web

from .anthropic_messages import ANTHROPIC_MESSAGES, count_messages_tokens
from .behaviour import Behaviour, DirectiveError, parse_directives
from .cloud import AZURE_OPENAI, BEDROCK, CONVERSE, VERTEX_ANTHROPIC, VERTEX_GEMINI
from .embeddings import COHERE_EMBED, GEMINI_EMBEDDINGS, OPENAI_EMBEDDINGS
from .gemini import GEMINI
from .openai_chat import OPENAI_CHAT
from .openai_chat.completions import OPENAI_COMPLETIONS
from .rerank import COHERE_RERANK, COMMON_RERANK, TEI_RERANK
from .search import brave_search, exa_search, searxng_search, tavily_search
from .wire import EventKind, Exchange, SimError, WireFormat

__all__ = [
    "BEHAVIOUR_HEADER",
    "RecordedRequest",
    "SimServer",
    "SimState",
    "create_app",
    "run",
]

BEHAVIOUR_HEADER = "X-Sim-Behaviour"
MAX_RECORDED = 1000
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini")

_log = logging.getLogger(__name__)
_COMPLETED, _CANCELLED, _DROPPED = "completed", "cancelled", "dropped"
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it arrived at a generation endpoint."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""
    """The query string, undecoded (e.g. `alt=sse`)."""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "headers": self.headers, "body": self.body,
                "query": self.query}


@dataclass(frozen=True, slots=True)
class _Installation:
    settings: tuple[tuple[str, Any], ...]
    behaviour: Behaviour
    serial: int


_AttemptKey = tuple[str | None, int, str, str]


class _SourcedDirectiveError(Exception):
    def __init__(self, source: str, error: DirectiveError) -> None:
        super().__init__(f"{error} (from the {source})")
        self.source = source
        self.error = error


class SimState:
    """Everything the simulator remembers: behaviours, recorded requests, counters."""

    def __init__(self, max_recorded: int = MAX_RECORDED) -> None:
        self._installed: dict[str, _Installation] = {}
        self._serial = 0
        self._attempts: dict[_AttemptKey, int] = {}
        self._recorded: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._counters = dict.fromkeys(("requests", _COMPLETED, _CANCELLED, _DROPPED), 0)
        self._in_flight = 0
        self._changed = asyncio.Event()
        self._models: dict[str, None] = dict.fromkeys(DEFAULT_MODELS)

    # behaviours

    def set_behaviour(self, model: str, directives: str) -> Behaviour:
        """Install `directives` for requests naming `model` (restarts its `fail_first` count)."""
        settings = parse_directives(directives)
        behaviour = Behaviour.from_settings(settings)
        self._serial += 1
        self._installed[model] = _Installation(tuple(settings.items()), behaviour, self._serial)
        self._models.setdefault(model)
        return behaviour

    def clear_behaviour(self, model: str | None = None) -> None:
        """Forget one model's behaviour, or every behaviour when `model` is None."""
        if model is None:
            self._installed.clear()
        else:
            self._installed.pop(model, None)

    def behaviours(self) -> dict[str, str]:
        return {model: installed.behaviour.directives() for model, installed in self._installed.items()}

    def resolve(self, model: str | None, header: str | None) -> tuple[str | None, Behaviour, _AttemptKey]:
        """Split `model#directives` and merge the behaviour sources (installed, model name, header).

        Returns (model without directives, behaviour, key to pass to `should_fail`).
        """
        inline = ""
        if model is not None and "#" in model:
            model, _, inline = model.partition("#")
        installed = self._installed.get(model) if model is not None else None
        if not inline and not header:
            behaviour = installed.behaviour if installed is not None else Behaviour()
        else:
            settings = dict(installed.settings) if installed is not None else {}
            for source, text in (("model", inline), (BEHAVIOUR_HEADER, header)):
                if text:
                    try:
                        settings.update(parse_directives(text))
                    except DirectiveError as exc:
                        raise _SourcedDirectiveError(source, exc) from None
            behaviour = Behaviour.from_settings(settings)
        key = (model, installed.serial if installed is not None else 0, inline, header or "")
        return model, behaviour, key

    def should_fail(self, behaviour: Behaviour, key: _AttemptKey) -> bool:
        """Whether this (valid) request answers with `behaviour.error_status`; counts `fail_first` attempts.

        Attempts are counted per behaviour installation and per distinct model-name / header directives.
        """
        if behaviour.fail_first is None:
            return behaviour.error_status is not None
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        return attempt <= behaviour.fail_first

    # recording

    def record(self, request: web.Request, body: Any) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self._recorded.append(RecordedRequest(request.method, request.path, headers, body, request.query_string))

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._recorded)

    def clear_requests(self) -> None:
        self._recorded.clear()

    def note_model(self, model: str) -> None:
        self._models.setdefault(model)

    def models(self) -> list[str]:
        return list(self._models)

    # counters

    def begin(self) -> None:
        self._counters["requests"] += 1
        self._in_flight += 1
        self._changed.set()

    def end(self, outcome: str) -> None:
        self._counters[outcome] += 1
        self._in_flight -= 1
        self._changed.set()

    def stats(self) -> dict[str, int]:
        return {**self._counters, "in_flight": self._in_flight}

    async def wait_until(self, predicate: Callable[[dict[str, int]], bool], within: float = 5.0) -> dict[str, int]:
        """Wait until `predicate(stats)` holds; raises `TimeoutError` after `within` seconds."""
        async with asyncio.timeout(within):
            while not predicate(stats := self.stats()):
                self._changed.clear()
                await self._changed.wait()
        return stats

    def reset(self) -> None:
        """Forget behaviours, recorded requests, attempt counts and counters (in-flight requests stay)."""
        self.clear_behaviour()
        self.clear_requests()
        self._attempts.clear()
        self._counters = dict.fromkeys(self._counters, 0)
        self._models = dict.fromkeys(DEFAULT_MODELS)
        self._changed.set()


STATE = web.AppKey("crossroads_sim_state", SimState)

# ------------------------------------------------------------------------------------ generation


def _parse_body(raw: bytes) -> tuple[Any, bool]:
    if not raw:
        return None, False
    try:
        return orjson.loads(raw), True
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace"), False


def _error_response(error: SimError) -> web.Response:
    return web.Response(status=error.status, body=error.body, headers={**_JSON_HEADERS, **error.headers})


class _Outcome:
    """How a request ended (one of the counters), and the response once one was started."""

    __slots__ = ("response", "value")

    def __init__(self) -> None:
        self.value = _COMPLETED
        self.response: web.StreamResponse | None = None


async def _abort(request: web.Request, outcome: _Outcome) -> None:
    """Cut the connection without finishing the response (after flushing what was written)."""
    outcome.value = _DROPPED
    transport = request.transport
    if transport is None:
        return
    for _ in range(50):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.002)
    transport.abort()


async def _respond(
    request: web.Request,
    *,
    fmt: WireFormat,
    exchange: Exchange,
    behaviour: Behaviour,
    model: str,
    outcome: _Outcome,
) -> web.StreamResponse:
    """Answer a validated request successfully, honouring the timing and failure directives."""
    tps = behaviour.tps
    if not exchange.stream:
        if tps:
            await asyncio.sleep(exchange.generated_tokens / tps)
        if behaviour.error_after is not None:
            return await _send(request, outcome, fmt.status_error(500, model, behaviour.retry_after))
        body = exchange.body()
        if behaviour.drop_after is not None:
            response = outcome.response = web.StreamResponse(headers=exchange.headers())
            response.content_length = len(body)
            await response.prepare(request)
            await _abort(request, outcome)
            return response
        if behaviour.malformed:
            body = body[: len(body) // 2]
        response = outcome.response = web.Response(body=body, headers=exchange.headers())
        await response.prepare(request)
        await response.write_eof()
        return response

    response = outcome.response = web.StreamResponse(headers={"Cache-Control": "no-cache", **exchange.headers()})
    await response.prepare(request)
    wait = behaviour.ttft / 1000 + (exchange.reasoning_tokens / tps if tps else 0.0)
    if wait > 0:
        await asyncio.sleep(wait)
    loop = asyncio.get_running_loop()
    drop_after, error_after = behaviour.drop_after, behaviour.error_after
    sent = 0
    paced = 0
    first_at = 0.0
    for event in exchange.events():
        if event.kind is not EventKind.HEAD:
            if drop_after is not None and sent >= drop_after:
                await _abort(request, outcome)
                return response
            if error_after is not None and sent >= error_after:
                await response.write(exchange.error_event())
                await response.write_eof()
                return response
        if event.kind is EventKind.CONTENT:
            if tps:
                if sent == 0:
                    first_at = loop.time()
                else:
                    delay = first_at + paced / tps - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                paced += event.tokens
            await response.write(event.data)
            sent += 1
            if sent == 1 and behaviour.malformed:
                await response.write(exchange.malformed_event())
        else:
            await response.write(event.data)
    await response.write_eof()
    return response


async def _send(request: web.Request, outcome: _Outcome, error: SimError) -> web.StreamResponse:
    response = outcome.response = _error_response(error)
    await response.prepare(request)
    await response.write_eof()
    return response


async def _serve(request: web.Request, fmt: WireFormat) -> web.StreamResponse:
    """Answer one request to a generation endpoint, counting how it ended."""
    state = request.app[STATE]
    state.begin()
    outcome = _Outcome()
    try:
        body, parsed = _parse_body(await request.read())
        state.record(request, body)
        try:
            fmt.authenticate(request)
            if not parsed:
                raise fmt.invalid_json()
            header = ";".join(request.headers.getall(BEHAVIOUR_HEADER, []))
            try:
                model, behaviour, attempt_key = state.resolve(fmt.model_of(request, body), header)
            except _SourcedDirectiveError as exc:
                message = f"{exc.error} (from the {exc.source})"
                raise fmt.error(400, message, param=exc.source, code="invalid_sim_directive") from None
            exchange = fmt.prepare(request, body, model, behaviour)
            assert model is not None  # prepare() rejects a request without a model
            state.note_model(model)
            failing = state.should_fail(behaviour, attempt_key)
        except SimError as error:
            return await _send(request, outcome, error)

        delay = behaviour.latency / 1000 + (0.0 if exchange.stream else behaviour.ttft / 1000)
        if delay > 0:
            await asyncio.sleep(delay)
        if behaviour.hang:
            await asyncio.get_running_loop().create_future()  # until the client goes away
        if failing:
            status = behaviour.error_status or 503
            return await _send(request, outcome, fmt.status_error(status, model, behaviour.retry_after))
        return await _respond(request, fmt=fmt, exchange=exchange, behaviour=behaviour, model=model, outcome=outcome)
    except asyncio.CancelledError:
        if outcome.value != _DROPPED:
            outcome.value = _CANCELLED
        raise
    except ConnectionResetError:
        if outcome.value != _DROPPED:
            outcome.value = _CANCELLED
        return outcome.response if outcome.response is not None else web.Response()
    except web.HTTPException:
        raise
    except Exception as exc:  # a simulator bug: answer in the wire format's shape so the test shows it
        _log.exception("simulator error while answering %s %s", request.method, request.path)
        if outcome.response is not None:
            raise
        return await _send(request, outcome, fmt.error(500, f"Simulator error: {exc!r}"))
    finally:
        state.end(outcome.value)


def _generation_handler(fmt: WireFormat) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(request, fmt)

    return handle


async def _list_models(request: web.Request) -> web.Response:
    try:
        OPENAI_CHAT.authenticate(request)
    except SimError as error:
        return _error_response(error)
    data = [
        {"id": model, "object": "model", "created": 1700000000, "owned_by": "crossroads-sim"}
        for model in request.app[STATE].models()
    ]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), headers=_JSON_HEADERS)


async def _count_tokens(request: web.Request) -> web.Response:
    """`POST /v1/messages/count_tokens` (Anthropic's "Count Message tokens"): the input tokens a Messages
    request would be billed, as the simulator counts them for its replies."""
    try:
        ANTHROPIC_MESSAGES.authenticate(request)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise ANTHROPIC_MESSAGES.invalid_json() from None
        request.app[STATE].record(request, body)
        tokens = count_messages_tokens(request, body)
    except SimError as error:
        return _error_response(error)
    return _json({"input_tokens": tokens})


async def _unknown_url(request: web.Request) -> web.Response:
    error = OPENAI_CHAT.error(404, f"Invalid URL ({request.method} {request.path})")
    return _error_response(error)


# ------------------------------------------------------------------------------------- control API


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), headers=_JSON_HEADERS)


async def _put_behaviour(request: web.Request) -> web.Response:
    model = request.match_info["model"]
    directives = await request.text()
    try:
        behaviour = request.app[STATE].set_behaviour(model, directives)
    except DirectiveError as exc:
        return _json({"error": {"message": str(exc), "directive": exc.directive}}, 400)
    return _json({"model": model, "directives": behaviour.directives(), "behaviour": behaviour.as_dict()})


async def _get_behaviours(request: web.Request) -> web.Response:
    return _json(request.app[STATE].behaviours())


async def _delete_behaviour(request: web.Request) -> web.Response:
    request.app[STATE].clear_behaviour(request.match_info["model"])
    return web.Response(status=204)


async def _delete_behaviours(request: web.Request) -> web.Response:
    request.app[STATE].clear_behaviour()
    return web.Response(status=204)


async def _get_requests(request: web.Request) -> web.Response:
    return _json([recorded.as_dict() for recorded in request.app[STATE].requests])


async def _delete_requests(request: web.Request) -> web.Response:
    request.app[STATE].clear_requests()
    return web.Response(status=204)


async def _get_stats(request: web.Request) -> web.Response:
    return _json(request.app[STATE].stats())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.Response(status=204)


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


# --------------------------------------------------------------------------------------------- app

_VERTEX = "/v1/projects/{project}/locations/{location}"
GENERATION_ROUTES: tuple[tuple[str, str, WireFormat], ...] = (
    ("POST", "/v1/chat/completions", OPENAI_CHAT),
    ("POST", "/v1/completions", OPENAI_COMPLETIONS),
    ("POST", "/v1/messages", ANTHROPIC_MESSAGES),
    # The model is the path segment before the method; `GeminiFormat.model_of` reads it from `match_info`.
    # Gemini serves the same methods under its stable `v1` (the google-genai SDK's default) and `v1beta`.
    *(("POST", f"/{version}/models/{{model}}:{method}", GEMINI)
      for version in ("v1beta", "v1") for method in ("generateContent", "streamGenerateContent")),
    ("POST", "/v1/embeddings", OPENAI_EMBEDDINGS),
    *(("POST", f"/{version}/models/{{model}}:{method}", GEMINI_EMBEDDINGS)
      for version in ("v1beta", "v1") for method in ("batchEmbedContents", "embedContent")),
    ("POST", "/v2/embed", COHERE_EMBED),
    ("POST", "/v1/rerank", COMMON_RERANK),
    ("POST", "/v2/rerank", COHERE_RERANK),
    ("POST", "/rerank", TEI_RERANK),
    # The clouds (`cloud/`): Bedrock's InvokeModel, Vertex AI's publisher models, Azure OpenAI's deployments.
    ("POST", "/model/{model}/invoke", BEDROCK),
    ("POST", "/model/{model}/invoke-with-response-stream", BEDROCK),
    ("POST", "/model/{model}/converse", CONVERSE),
    ("POST", "/model/{model}/converse-stream", CONVERSE),
    *(("POST", f"{_VERTEX}/publishers/google/models/{{model}}:{method}", VERTEX_GEMINI)
      for method in ("generateContent", "streamGenerateContent")),
    ("POST", f"{_VERTEX}/publishers/anthropic/models/{{model}}:{{method}}", VERTEX_ANTHROPIC),
    ("POST", "/openai/deployments/{deployment}/chat/completions", AZURE_OPENAI),
    ("POST", "/openai/v1/chat/completions", AZURE_OPENAI),
)
"""(method, path, wire format) for every generation endpoint."""


def create_app(state: SimState | None = None) -> web.Application:
    """The simulator as an aiohttp application.

    Serve it with `handler_cancellation=True` on the runner (as `SimServer` and `run` do) so a client that
    disconnects while the simulator is waiting is noticed and counted.
    """
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state if state is not None else SimState()
    router = app.router
    for method, path, fmt in GENERATION_ROUTES:
        router.add_route(method, path, _generation_handler(fmt))
    router.add_post("/v1/messages/count_tokens", _count_tokens)
    router.add_get("/v1/models", _list_models)
    router.add_post("/exa/search", exa_search)
    router.add_post("/tavily/search", tavily_search)
    router.add_get("/brave/res/v1/web/search", brave_search)
    router.add_get("/searxng/search", searxng_search)
    router.add_put("/_sim/behaviours/{model:.+}", _put_behaviour)
    router.add_delete("/_sim/behaviours/{model:.+}", _delete_behaviour)
    router.add_get("/_sim/behaviours", _get_behaviours)
    router.add_delete("/_sim/behaviours", _delete_behaviours)
    router.add_get("/_sim/requests", _get_requests)
    router.add_delete("/_sim/requests", _delete_requests)
    router.add_get("/_sim/stats", _get_stats)
    router.add_post("/_sim/reset", _reset)
    router.add_get("/_sim/health", _health)
    router.add_route("*", "/v1/{tail:.*}", _unknown_url)
    return app


# ------------------------------------------------------------------------------------- in-process


class SimServer:
    """The simulator on a real socket inside the current event loop.

        async with SimServer() as sim:
            client = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="x")
            sim.set_behaviour("gpt-4o", "status=429;retry_after=2")

    Binds port 0 (a free port) unless given one. Closing waits at most `shutdown_timeout` seconds for
    requests still in flight (e.g. under `hang`), then cancels them.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shutdown_timeout: float = 0.25,
        max_recorded: int = MAX_RECORDED,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self.state = SimState(max_recorded)
        self.app = create_app(self.state)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("SimServer is already running")
        runner = web.AppRunner(
            self.app, handler_cancellation=True, access_log=None, shutdown_timeout=self._shutdown_timeout
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SimServer is not running")
        return self._port

    @property
    def url(self) -> str:
        """`http://host:port`, without a trailing slash (append "/v1" for OpenAI clients)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Recorded requests, oldest first (the last `max_recorded`)."""
        return self.state.requests

    @property
    def stats(self) -> dict[str, int]:
        return self.state.stats()

    @property
    def behaviours(self) -> dict[str, str]:
        return self.state.behaviours()

    def set_behaviour(self, model: str, directives: str) -> Behaviour:
        """Install directives for `model`; raises `DirectiveError` when they are malformed."""
        return self.state.set_behaviour(model, directives)

    def clear_behaviour(self, model: str | None = None) -> None:
        self.state.clear_behaviour(model)

    def clear_requests(self) -> None:
        self.state.clear_requests()

    def reset(self) -> None:
        self.state.reset()

    async def wait_until(self, predicate: Callable[[dict[str, int]], bool], within: float = 5.0) -> dict[str, int]:
        """Wait until `predicate(stats)` holds; returns the stats, raises `TimeoutError` after `within` s."""
        return await self.state.wait_until(predicate, within)

    async def wait_idle(self, within: float = 5.0) -> dict[str, int]:
        """Wait until no request is in flight (e.g. until a disconnect has been noticed)."""
        return await self.state.wait_until(lambda stats: stats["in_flight"] == 0, within)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve_forever(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with SimServer(host, port, shutdown_timeout=1.0) as sim:
        print(f"crossroads sim listening on {sim.url}", flush=True)
        await stop.wait()


def run(host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the simulator until interrupted (Ctrl-C or SIGTERM), on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(_serve_forever(host, port))
    sys.stdout.flush()
