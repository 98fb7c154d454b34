"""What every inference API does, whatever its wire format: authenticate → parse → plan → admit → dispatch
→ render → finish.

An inbound API (`/chat/completions`, and any other that asks a model for a reply) is a `Face`: how its
requests are read into the typed `ChatRequest` and how replies, streams and errors are written in its wire
format. `Inference` runs the rest — the same routing, fallbacks, limits, reservations, cost, ledger and
generation record for every face — so a new face is a translator and nothing else (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.cache import Entry, Lookup, ResponseCache, hit_headers, hit_reply, replayed_stream
from crossroads.api.fastlane import stream_response
from crossroads.api.headers import first as first_header
from crossroads.api.headers import text as header_text
from crossroads.api.render import SSE_HEADERS, generation_id, whole_body
from crossroads.errors import CrossroadsError, UpstreamError
from crossroads.guardrails.enforce import Guardrails
from crossroads.ledger import content
from crossroads.ledger.accounting import Accountant, Charge, Generation, Hold, Tab
from crossroads.ledger.keys import Key, KeyRing
from crossroads.plugins import Plugins
from crossroads.presets.apply import PresetResolver
from crossroads.providers.base import Piece
from crossroads.providers.registry import passthrough_headers
from crossroads.ratelimit.base import Limiter
from crossroads.routing.dispatch import Dispatcher
from crossroads.routing.outcome import End, OpenStream, Served
from crossroads.routing.plan import Planner, Route
from crossroads.schema.request import ChatRequest
from crossroads.schema.usage import Usage
from crossroads.settings import Settings

log = logging.getLogger("crossroads.inference")


class StreamWriter(Protocol):
    """Writes one stream in a face's wire format. Every method returns the bytes to send (maybe none)."""

    def start(self, stream: OpenStream) -> bytes:
        """The stream's opening, once its first content arrived (`stream.pieces` follow through `pieces`)."""
        ...

    def pieces(self, pieces: list[Piece]) -> bytes: ...

    def end(self, generation: Generation, charge: Charge) -> bytes:
        """The close of a stream that finished: final usage (with cost) and the terminator."""
        ...

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        """The close of a stream that broke after the response began (`stream` is None when no endpoint had
        started streaming)."""
        ...


class Face(Protocol):
    """An inbound API's wire format."""

    #: Sent while the upstream is silent before a stream's first content (commits the response).
    keepalive: bytes
    #: The API's name in the metrics (`chat`, `messages`...).
    api: str
    #: What its requests ask of a model, in OpenTelemetry's GenAI terms (`chat`, `text_completion`).
    operation: str

    def credentials(self, request: web.Request) -> str | None:
        """The `Authorization`-style credential (`Bearer <key>`) the request carries."""
        ...

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest: ...

    def reply(self, request: ChatRequest, served: Served, generation: Generation, charge: Charge) \
            -> web.Response: ...

    def writer(self, request: ChatRequest, generation: Generation) -> StreamWriter: ...

    def error(self, error: CrossroadsError, headers: Mapping[str, str]) -> web.Response: ...


class BearerCredentials:
    """The credential of APIs that take the key as `Authorization: Bearer <key>` (OpenAI's and OpenRouter's)."""

    def credentials(self, request: web.Request) -> str | None:
        return request.headers.get("Authorization")


class Inference:
    """Serves one face's requests with the gateway's shared services."""

    def __init__(self, face: Face, settings: Settings, keys: KeyRing, planner: Planner, dispatcher: Dispatcher,
                 accountant: Accountant, limiter: Limiter,
                 app_of_agent: Callable[[str | None], str | None] | None = None,
                 presets: PresetResolver | None = None, guardrails: Guardrails | None = None,
                 plugins: Plugins | None = None, cache: ResponseCache | None = None) -> None:
        self.face = face
        #: Applies the preset a request names, before it is parsed.
        self.presets = presets
        #: Holds requests to their key's guardrails.
        self.guardrails = guardrails
        self.plugins = plugins or Plugins()
        #: Response caching (`api/cache.py`), with this API's name in its keys.
        self.cache = cache
        #: The app a request comes from when it sends no title, read from its User-Agent (a face's clients
        #: may be known by it, e.g. a coding agent).
        self.app_of_agent = app_of_agent
        self.settings = settings
        self.keys = keys
        self.planner = planner
        self.dispatcher = dispatcher
        self.accountant = accountant
        self.limiter = limiter
        self.passthrough = passthrough_headers(dispatcher.adapters)

    async def handle(self, request: web.Request, preset: str | None = None) -> web.StreamResponse:
        """Serve one request; `preset` is the slug of the preset the URL names, if any."""
        arrived = time.monotonic()
        metrics = self.accountant.metrics
        metrics.in_flight += 1
        try:
            return await self._handle(request, arrived, preset)
        except CrossroadsError as error:
            metrics.refused(self.face.api, error, arrived)
            return self.face.error(error, {})
        finally:
            metrics.in_flight -= 1

    async def _handle(self, request: web.Request, arrived: float, preset: str | None) -> web.StreamResponse:
        face = self.face
        headers = request.headers
        key = await self.keys.authenticate(face.credentials(request))
        body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
        if self.presets is not None:
            body = self.presets.resolve(body, preset)
        forwarded = {name: value for name in self.passthrough if (value := header_text(headers.get(name)))}
        chat = face.parse(body, self.settings.default_model, forwarded)
        guard = None
        if self.guardrails is not None:
            chat, guard = self.guardrails.check(key, chat)
        lookup = self.cache.lookup_chat(face.api, key, body, chat, headers) if self.cache is not None else None
        if lookup is not None:
            assert self.cache is not None
            entry = await self.cache.find(lookup, headers)
            if entry is not None:
                if guard is not None:
                    self.planner.plan(chat, guard)  # a stored reply is no way round the key's guardrails
                return await self._replay(request, key, chat, entry, lookup)
        if chat.plugins:
            chat = await self.plugins.prepare(chat)
        route = self.planner.plan(chat, guard, account=key.hash)
        await self.limiter.check(key, route, chat)
        hold = await self.accountant.admit(key, list(route.endpoints()), chat.prompt_tokens_bound(), chat.max_output,
                                           chat.completions)
        tab = open_tab(self.accountant, hold, route, headers, chat, self.app_of_agent, api=face.api, arrived=arrived,
                       operation=face.operation)
        if self.settings.log_content:
            tab.generation.content = content.started(chat.messages)
        try:
            if chat.stream:
                return await self._stream(request, chat, route, tab, lookup)
            served = await self.dispatcher.complete(chat, route, tab)
            if chat.plugins:
                assert served.endpoint is not None  # `Dispatcher.complete` returns served outcomes only
                self.plugins.amend(chat, served.completion, served.endpoint)
            if tab.generation.content is not None:
                content.of_reply(tab.generation.content, served.completion.choices)
            response = face.reply(chat, served, tab.generation, await served.finish(End.DONE))
            self.planner.remember(route, served.endpoint, tab.generation.usage)
            if lookup is not None and self.cache is not None and (stored := whole_body(response)) is not None:
                await self.cache.put(lookup, stored)
                response.headers["X-OpenRouter-Cache-Status"] = "MISS"
            return response
        except CrossroadsError as error:
            return face.error(error, {"X-Generation-Id": tab.generation.id})
        finally:
            # Whatever ended the request without settling it (a failure nothing above expected), its hold is
            # released and the attempt recorded: a reservation never outlives its request.
            await tab.abandon()

    async def _replay(self, request: web.Request, key: Key, chat: ChatRequest, entry: Entry, lookup: Lookup) \
            -> web.StreamResponse:
        """A cache hit: the stored reply, or stream, under a new generation id, recorded as a generation charged
        nothing."""
        generation = await record_hit(self.accountant, key, chat, request.headers, api=self.face.api,
                                      operation=self.face.operation)
        if not lookup.stream:
            return hit_reply(entry, generation.id)
        events, stream_source = replayed_stream(entry.body, generation.id)
        response = stream_response(request, {**SSE_HEADERS, "X-Generation-Id": generation.id,
                                              **hit_headers(entry, stream_source)})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof(events)
        return response

    async def _stream(self, request: web.Request, chat: ChatRequest, route: Route, tab: Tab,
                      lookup: Lookup | None) -> web.StreamResponse:
        generation = tab.generation
        face = self.face
        writer = face.writer(chat, generation)
        if chat.plugins:
            writer = self.plugins.writer(chat, writer)
        response = stream_response(request, {**SSE_HEADERS, "X-Generation-Id": generation.id})
        if lookup is not None:
            response.headers["X-OpenRouter-Cache-Status"] = "MISS"  # stored once it completes
        keepalive = KeepAlive(request, response, self.settings.keepalive_seconds, face.keepalive)
        try:
            stream = await self.dispatcher.open_stream(chat, route, tab)
        except Exception as exc:
            await keepalive.stop()
            if not response.prepared:
                raise
            # Keep-alive comments already committed the response: the error goes in-band.
            await response.write(writer.failed(exc if isinstance(exc, CrossroadsError) else _internal(exc), None))
            return response
        except BaseException:
            await keepalive.stop()
            raise
        await keepalive.stop()
        if not response.prepared:
            await response.prepare(request)
        metrics = self.accountant.metrics
        metrics.streams += 1
        # The events sent, gathered only when a complete stream is to be stored in the response cache.
        sent: list[bytes] | None = [] if lookup is not None else None
        try:
            completed = await self._relay(response, writer, stream, generation, route, sent)
        finally:
            metrics.streams -= 1
        if completed and sent is not None and lookup is not None and self.cache is not None:
            await self.cache.put_stream(lookup, generation.id, b"".join(sent))
        return response

    async def _relay(self, response: web.StreamResponse, writer: StreamWriter, stream: OpenStream,
                     generation: Generation, route: Route, sent: list[bytes] | None) -> bool:
        """Relay the stream to its end; whether it completed (no failure). `sent`, when given, gathers every
        byte written."""
        # The response is committed: from here on no other provider can take over; a failure can only end
        # the stream in-band, in the face's error form.
        failure: CrossroadsError | None = None
        # What the upstream has already sent is relayed in one write, and only when the next read would
        # wait: a stream that arrived whole (an instant upstream, or a client that fell behind) goes out
        # with its final usage and the end of the response in a single write, not one per batch.
        out = [writer.start(stream), writer.pieces(stream.pieces)]
        transcript = None if generation.content is None else content.StreamTranscript(generation.content)
        if transcript is not None:
            transcript.add(stream.pieces)
        try:
            while True:
                if out and not stream.ready:
                    data = b"".join(out)
                    await response.write(data)
                    out.clear()
                    if sent is not None:
                        sent.append(data)
                pieces = await stream.next_pieces()
                if pieces is None:
                    break
                if pieces:
                    out.append(writer.pieces(pieces))
                    if transcript is not None:
                        transcript.add(pieces)
        except UpstreamError as exc:
            failure = exc
        except (asyncio.CancelledError, ConnectionResetError):
            if transcript is not None:
                transcript.close()
            await stream.finish(End.CLIENT_GONE)
            raise
        except Exception as exc:  # a fault of the gateway's own: the stream still ends properly
            failure = _internal(exc)
        if transcript is not None:
            transcript.close()
        if failure is not None:
            await stream.finish(End.FAILED, failure)
            out.append(writer.failed(failure, stream))
        else:
            out.append(writer.end(generation, await stream.finish(End.DONE)))
            self.planner.remember(route, stream.endpoint, generation.usage)
        data = b"".join(out)
        if sent is not None:
            sent.append(data)
        with contextlib.suppress(ConnectionResetError):  # the client left at the very end: nothing to do
            await response.write_eof(data)
        return failure is None


def open_tab(accountant: Accountant, hold: Hold, route: Route, headers: Mapping[str, str], chat: ChatRequest,
             app_of_agent: Callable[[str | None], str | None] | None = None, *, api: str, arrived: float,
             operation: str = "chat") -> Tab:
    """The account of an admitted request: its hold, and its generation record as far as it is known before
    any upstream is tried (`attributed`). `api` names the inbound API, `arrived` is when the request came in
    (monotonic seconds): latency and duration count from there."""
    generation = attributed(headers, chat, route.groups[0][0].id, operation, app_of_agent)
    return Tab(accountant, hold, api=api, clock=arrived, generation=generation)


async def record_hit(accountant: Accountant, key: Key, chat: ChatRequest, headers: Mapping[str, str], *,
                     api: str, operation: str) -> Generation:
    """A response-cache hit's generation, recorded as charged nothing (its usage zero, served in no time)."""
    generation = attributed(headers, chat, chat.model, operation)
    generation.usage, generation.finish_reason = Usage(0, 0), "stop"
    generation.latency_ms = generation.generation_time_ms = 0
    await Tab(accountant, Hold(key, 0), generation, api=api).settle()
    return generation


def attributed(headers: Mapping[str, str], chat: ChatRequest, model: str, operation: str,
               app_of_agent: Callable[[str | None], str | None] | None = None) -> Generation:
    """A new generation record with its attribution from the client's headers, decoded safely
    (`app_of_agent` names the app from the `User-Agent` when no title is sent)."""
    user_agent = first_header(headers, "User-Agent")
    return Generation(
        id=generation_id(),
        model=model,
        streamed=chat.stream,
        started=time.time(),
        http_referer=first_header(headers, "HTTP-Referer", "Referer"),
        app_title=first_header(headers, "X-OpenRouter-Title", "X-Title")
        or (app_of_agent(user_agent) if app_of_agent else None),
        user_agent=user_agent,
        external_user=chat.user,
        session_id=chat.session_id or first_header(headers, "X-Session-Id"),
        operation=operation,
    )


def _internal(exc: Exception) -> CrossroadsError:
    log.exception("unhandled error while streaming", exc_info=exc)
    return CrossroadsError("internal error")


class KeepAlive:
    """Keep-alive bytes while the upstream is silent: after `interval` seconds without a first content
    event, the response is committed (status 200) and `data` sent, then again every `interval` seconds. A
    timer, not a task, so a stream that starts promptly costs next to nothing."""

    def __init__(self, request: web.Request, response: web.StreamResponse, interval: float, data: bytes) -> None:
        self._request = request
        self._response = response
        self._interval = interval
        self._data = data
        self._writing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(interval, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._writing = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        try:
            if not self._response.prepared:
                await self._response.prepare(self._request)
            await self._response.write(self._data)
        except ConnectionResetError:
            return  # the client left; the handler is being cancelled
        if self._timer is None and self._writing is not None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._fire)

    async def stop(self) -> None:
        """No more keep-alives; returns once any being written is out (the caller writes next)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)


__all__ = ["BearerCredentials", "Face", "Inference", "KeepAlive", "StreamWriter", "open_tab"]
