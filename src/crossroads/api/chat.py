"""`POST /api/v1/chat/completions`: parse → authenticate → plan → admit → dispatch → render → settle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.headers import first as first_header
from crossroads.api.headers import text as header_text
from crossroads.api.render import DONE, JSON, KEEPALIVE, error_response, generation_id, sse
from crossroads.errors import CrossroadsError, UpstreamError
from crossroads.ledger.accounting import Accountant, Generation, Tab
from crossroads.ledger.keys import KeyRing
from crossroads.providers.base import Piece
from crossroads.providers.registry import passthrough_headers
from crossroads.ratelimit.base import Limiter
from crossroads.routing.dispatch import Dispatcher
from crossroads.routing.outcome import End, OpenStream
from crossroads.routing.plan import Planner, Route
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest
from crossroads.settings import Settings

log = logging.getLogger("crossroads.chat")


class ChatCompletions:
    def __init__(self, settings: Settings, keys: KeyRing, planner: Planner, dispatcher: Dispatcher,
                 accountant: Accountant, limiter: Limiter) -> None:
        self.settings = settings
        self.keys = keys
        self.planner = planner
        self.dispatcher = dispatcher
        self.accountant = accountant
        self.limiter = limiter
        self.passthrough = passthrough_headers(dispatcher.adapters)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        key = await self.keys.authenticate(headers.get("Authorization"))
        body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
        forwarded = {name: value for name in self.passthrough if (value := header_text(headers.get(name)))}
        chat = parse_chat_request(body, self.settings.default_model, forwarded)
        route = self.planner.plan(chat)
        await self.limiter.check(key, route, chat)
        hold = await self.accountant.admit(key, list(route.endpoints()), chat.prompt_tokens_bound(), chat.max_output,
                                           chat.completions)
        tab = Tab(self.accountant, hold, Generation(
            id=generation_id(),
            model=route.groups[0][0].id,
            streamed=chat.stream,
            started=time.time(),
            http_referer=first_header(headers, "HTTP-Referer", "Referer"),
            app_title=first_header(headers, "X-OpenRouter-Title", "X-Title"),
            user_agent=first_header(headers, "User-Agent"),
            external_user=chat.user,
            session_id=chat.session_id or first_header(headers, "X-Session-Id"),
        ))
        try:
            if chat.stream:
                return await self._stream(request, chat, route, tab)
            return await self._complete(chat, route, tab)
        except CrossroadsError as error:
            return error_response(error, {"X-Generation-Id": tab.generation.id})
        finally:
            # Whatever ended the request without settling it (a failure nothing above expected), its hold is
            # released and the attempt recorded: a reservation never outlives its request.
            await tab.abandon()

    # -- non-streaming -----------------------------------------------------------------------------------

    async def _complete(self, chat: ChatRequest, route: Route, tab: Tab) -> web.Response:
        served = await self.dispatcher.complete(chat, route, tab)
        completion = served.completion
        if chat.reasoning.exclude:
            for choice in completion.choices:
                _hide_reasoning(choice["message"])
        charge = await served.finish(End.DONE)
        generation = tab.generation
        usage = generation.usage
        assert usage is not None
        assert served.endpoint is not None
        body: dict[str, Any] = {
            "id": generation.id,
            "provider": served.endpoint.provider.name,
            "model": generation.model,
            "object": "chat.completion",
            "created": int(generation.started),
            "choices": completion.choices,
            "system_fingerprint": completion.extra.get("system_fingerprint"),
            "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion),
        }
        if "service_tier" in completion.extra:
            body["service_tier"] = completion.extra["service_tier"]
        return web.Response(body=orjson.dumps(body), content_type=JSON,
                            headers={"X-Generation-Id": generation.id})

    # -- streaming ---------------------------------------------------------------------------------------

    async def _stream(self, request: web.Request, chat: ChatRequest, route: Route, tab: Tab) \
            -> web.StreamResponse:
        generation = tab.generation
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Generation-Id": generation.id,
            "X-Accel-Buffering": "no",
        })
        keepalive = KeepAlive(request, response, self.settings.keepalive_seconds)
        try:
            stream = await self.dispatcher.open_stream(chat, route, tab)
        except Exception as exc:
            await keepalive.stop()
            if not response.prepared:
                raise
            # Keep-alive comments already committed the response: the error goes in-band.
            error = exc if isinstance(exc, CrossroadsError) else _internal(exc)
            await response.write(sse(_error_chunk(generation, None, error)) + DONE)
            return response
        except BaseException:
            await keepalive.stop()
            raise
        await keepalive.stop()
        if not response.prepared:
            await response.prepare(request)
        # The response is committed: from here on no other provider can take over; a failure can only end
        # the stream in-band, with an error chunk.
        assert stream.model is not None
        assert stream.endpoint is not None
        head = {"id": generation.id, "provider": stream.endpoint.provider.name, "model": stream.model.id,
                "object": "chat.completion.chunk", "created": int(generation.started),
                **stream.translator.head_fields}
        prefix = _prefix(head)
        failure: CrossroadsError | None = None
        # `reasoning.exclude`: the model may reason, the client does not see it. Adapters that can ask the
        # provider not to return it do; this covers the rest.
        hide_reasoning = chat.reasoning.exclude
        # What the upstream has already sent is relayed in one write, and only when the next read would
        # wait: a stream that arrived whole (an instant upstream, or a client that fell behind) goes out
        # with its final usage chunk and the end of the response in a single write, not one per batch.
        out = [_encode(prefix, _without_reasoning(stream.pieces) if hide_reasoning else stream.pieces)]
        try:
            while True:
                if out and not stream.ready:
                    await response.write(b"".join(out))
                    out.clear()
                upstream_pieces = await stream.next_pieces()
                if upstream_pieces is None:
                    break
                pieces = _without_reasoning(upstream_pieces) if hide_reasoning else upstream_pieces
                if pieces:
                    out.append(_encode(prefix, pieces))
        except UpstreamError as exc:
            failure = exc
        except (asyncio.CancelledError, ConnectionResetError):
            await stream.finish(End.CLIENT_GONE)
            raise
        except Exception as exc:  # a fault of the gateway's own: the stream still ends properly
            failure = _internal(exc)
        if failure is not None:
            await stream.finish(End.FAILED, failure)
            out.append(sse(_error_chunk(generation, stream, failure)))
        else:
            charge = await stream.finish(End.DONE)
            usage = generation.usage
            assert usage is not None
            out.append(sse({**head, "choices": [],
                            "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion)}))
        out.append(DONE)
        with contextlib.suppress(ConnectionResetError):  # the client left at the very end: nothing to do
            await response.write_eof(b"".join(out))
        return response


def _internal(exc: Exception) -> CrossroadsError:
    log.exception("unhandled error while streaming", exc_info=exc)
    return CrossroadsError("internal error")


def _error_chunk(generation: Generation, stream: OpenStream | None, error: CrossroadsError) -> dict[str, Any]:
    payload = error.payload()
    metadata = {"error_type": payload["metadata"].get("error_type", "server")}
    provider_code = payload["metadata"].get("provider_code")
    if provider_code is not None and error.code < 500:
        metadata["provider_code"] = str(provider_code)
    provider = stream.endpoint.provider.name if stream and stream.endpoint else \
        payload["metadata"].get("provider_name")
    chunk: dict[str, Any] = {
        "id": generation.id,
        "object": "chat.completion.chunk",
        "created": int(generation.started),
        "model": generation.model,
        "provider": provider,
        "error": {"code": error.code, "message": payload["message"], "metadata": metadata},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                     "native_finish_reason": stream.translator.native_finish_reason if stream else None}],
    }
    if provider is None:
        del chunk["provider"]
    return chunk


class KeepAlive:
    """`: OPENROUTER PROCESSING` comments while the upstream is silent: after `interval` seconds without a
    first content event, the response is committed (status 200) and a comment sent, then one every
    `interval` seconds. A timer, not a task, so a stream that starts promptly costs next to nothing."""

    def __init__(self, request: web.Request, response: web.StreamResponse, interval: float) -> None:
        self._request = request
        self._response = response
        self._interval = interval
        self._writing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(interval, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._writing = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        try:
            if not self._response.prepared:
                await self._response.prepare(self._request)
            await self._response.write(KEEPALIVE)
        except ConnectionResetError:
            return  # the client left; the handler is being cancelled
        if self._timer is None and self._writing is not None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._fire)

    async def stop(self) -> None:
        """No more comments; returns once any comment being written is out (the caller writes next)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)


def _prefix(head: dict[str, Any]) -> bytes:
    """`data: {"id":...,"created":...,` — the start every chunk of one stream shares, encoded once."""
    return b"data: " + orjson.dumps(head)[:-1] + b","


def _encode(prefix: bytes, pieces: list[Piece]) -> bytes:
    """Chunks as SSE events: the shared prefix, then each piece's own members."""
    if len(pieces) == 1:
        return prefix + orjson.dumps(pieces[0])[1:] + b"\n\n"
    return b"".join([prefix + orjson.dumps(piece)[1:] + b"\n\n" for piece in pieces])


def _hide_reasoning(message: dict[str, Any]) -> None:
    """Drop readable reasoning from a message or delta. Opaque pieces (encrypted reasoning, signatures with
    no text) stay: a provider needs them back to continue a tool loop, and they show nothing."""
    if message.get("reasoning") is not None:
        message["reasoning"] = None
    details = message.get("reasoning_details")
    if details:
        kept = [d for d in details if not d.get("text") and not d.get("summary")]
        if kept:
            message["reasoning_details"] = kept
        else:
            del message["reasoning_details"]


def _without_reasoning(pieces: list[Piece]) -> list[Piece]:
    kept: list[Piece] = []
    for piece in pieces:
        for choice in piece.get("choices", ()):
            delta = choice.get("delta")
            if delta:
                _hide_reasoning(delta)
                if delta.get("reasoning", 0) is None:
                    del delta["reasoning"]
        if any(choice.get("delta") or choice.get("finish_reason") for choice in piece.get("choices", ())) \
                or "usage" in piece:
            kept.append(piece)
    return kept


__all__ = ["ChatCompletions"]
