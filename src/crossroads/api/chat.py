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
from crossroads.api.render import DONE, JSON, KEEPALIVE, generation_id, sse
from crossroads.errors import AllProvidersFailed, CrossroadsError, UpstreamError
from crossroads.ledger.accounting import Accountant, Generation, Hold, estimate_usage
from crossroads.ledger.keys import KeyRing
from crossroads.providers.base import Piece
from crossroads.providers.registry import passthrough_headers
from crossroads.ratelimit.base import Limiter
from crossroads.routing.dispatch import Attempt, Dispatcher, OpenStream
from crossroads.routing.plan import Planner
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest
from crossroads.settings import Settings

log = logging.getLogger("crossroads.chat")

_CLIENT_GONE = 499  # the status nginx made famous: the client closed the connection


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
        key = await self.keys.authenticate(request.headers.get("Authorization"))
        body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
        forwarded = {name: value for name in self.passthrough if (value := request.headers.get(name))}
        chat = parse_chat_request(body, self.settings.default_model, forwarded)
        route = self.planner.plan(chat)
        await self.limiter.check(key, route, chat)
        hold = await self.accountant.admit(key, list(route.endpoints()), chat.prompt_tokens_bound(), chat.max_output)
        headers = request.headers
        generation = Generation(
            id=generation_id(),
            model=route.groups[0][0].id,
            streamed=chat.stream,
            started=time.time(),
            http_referer=headers.get("HTTP-Referer") or headers.get("Referer"),
            app_title=headers.get("X-OpenRouter-Title") or headers.get("X-Title"),
            user_agent=headers.get("User-Agent"),
            external_user=chat.user,
            session_id=chat.session_id or headers.get("X-Session-Id"),
        )
        if chat.stream:
            return await self._stream(request, chat, route, hold, generation)
        return await self._complete(chat, route, hold, generation)

    # -- non-streaming -----------------------------------------------------------------------------------

    async def _complete(self, chat: ChatRequest, route: Any, hold: Hold, generation: Generation) -> web.Response:
        clock = time.monotonic()
        try:
            served = await self.dispatcher.complete(chat, route)
        except CrossroadsError as error:
            await self._failed(hold, generation, error, clock)
            error.headers["X-Generation-Id"] = generation.id
            raise
        except asyncio.CancelledError:
            await self._failed(hold, generation, None, clock, cancelled=True)
            raise
        completion = served.completion
        if chat.reasoning.exclude:
            for choice in completion.choices:
                _hide_reasoning(choice["message"])
        usage = completion.usage or estimate_usage(chat.prompt_chars, _completion_chars(completion.choices))
        usage.images = usage.images or chat.images
        first = completion.choices[0]
        generation.model = served.model.id
        generation.endpoint = served.endpoint
        generation.usage = usage
        generation.upstream_id = completion.upstream_id
        generation.finish_reason = first.get("finish_reason")
        generation.native_finish_reason = first.get("native_finish_reason")
        generation.latency_ms = int((served.first_byte - clock) * 1000)
        generation.generation_time_ms = int((time.monotonic() - served.started) * 1000)
        generation.trace = [a.public() for a in served.trace]
        charge = await self.accountant.settle(hold, generation)
        body: dict[str, Any] = {
            "id": generation.id,
            "provider": served.endpoint.provider.name,
            "model": served.model.id,
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

    async def _stream(self, request: web.Request, chat: ChatRequest, route: Any, hold: Hold,
                      generation: Generation) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Generation-Id": generation.id,
            "X-Accel-Buffering": "no",
        })
        clock = time.monotonic()
        keepalive = KeepAlive(request, response, self.settings.keepalive_seconds)
        try:
            stream = await self.dispatcher.open_stream(chat, route)
        except CrossroadsError as error:
            await keepalive.stop()
            await self._failed(hold, generation, error, clock)
            if not response.prepared:
                error.headers["X-Generation-Id"] = generation.id
                raise
            await response.write(sse(self._error_chunk(generation, None, error)) + DONE)
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            await keepalive.stop()
            await self._failed(hold, generation, None, clock, cancelled=True)
            raise
        await keepalive.stop()
        if not response.prepared:
            await response.prepare(request)
        # The response is committed: from here on no other provider can take over; a failure can only end
        # the stream in-band, with an error chunk.
        generation.model = stream.model.id
        generation.endpoint = stream.endpoint
        generation.latency_ms = int((stream.first_byte - clock) * 1000)
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
            stream.upstream.close()  # stop the provider generating (and billing) at once
            await self._finish(hold, generation, stream, chat, error=None, cancelled=True)
            raise
        finally:
            if not stream.finished:
                stream.upstream.close()
        charge = await self._finish(hold, generation, stream, chat, error=failure, cancelled=False)
        if failure is not None:
            out.append(sse(self._error_chunk(generation, stream, failure)))
        else:
            usage = generation.usage
            assert usage is not None
            out.append(sse({**head, "choices": [],
                            "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion)}))
        out.append(DONE)
        with contextlib.suppress(ConnectionResetError):  # the client left at the very end: nothing to do
            await response.write_eof(b"".join(out))
        return response

    async def _finish(self, hold: Hold, generation: Generation, stream: OpenStream, chat: ChatRequest,
                error: CrossroadsError | None, cancelled: bool) -> Any:
        translator = stream.translator
        usage = translator.usage
        if usage is None:
            usage = estimate_usage(chat.prompt_chars, translator.completion_chars)
        usage.images = usage.images or chat.images
        generation.usage = usage
        generation.upstream_id = translator.upstream_id
        generation.finish_reason = "error" if error else translator.finish_reason
        generation.native_finish_reason = translator.native_finish_reason
        generation.generation_time_ms = int((time.monotonic() - stream.started) * 1000)
        generation.cancelled = cancelled
        if cancelled:
            generation.status = _CLIENT_GONE
        elif error is not None:
            generation.status = error.code
            generation.error_message = error.message
        self.dispatcher.finish_stream(stream, _ClientGone("client closed the connection") if cancelled else error,
                                      usage.completion_tokens if not usage.estimated else None)
        generation.trace = [a.public() for a in stream.trace]
        return await self.accountant.settle(hold, generation)

    async def _failed(self, hold: Hold, generation: Generation, error: CrossroadsError | None, clock: float,
                      cancelled: bool = False) -> None:
        generation.status = _CLIENT_GONE if cancelled else (error.code if error else 500)
        generation.cancelled = cancelled
        generation.error_message = error.message if error else None
        generation.latency_ms = int((time.monotonic() - clock) * 1000)
        if isinstance(error, AllProvidersFailed):
            generation.trace = error.trace
        await self.accountant.settle(hold, generation)

    @staticmethod
    def _error_chunk(generation: Generation, stream: OpenStream | None, error: CrossroadsError) -> dict[str, Any]:
        payload = error.payload()
        metadata = {"error_type": payload["metadata"].get("error_type", "server")}
        provider_code = payload["metadata"].get("provider_code")
        if provider_code is not None and error.code < 500:
            metadata["provider_code"] = str(provider_code)
        chunk: dict[str, Any] = {
            "id": generation.id,
            "object": "chat.completion.chunk",
            "created": int(generation.started),
            "model": stream.model.id if stream else generation.model,
            "provider": stream.endpoint.provider.name if stream else payload["metadata"].get("provider_name"),
            "error": {"code": error.code, "message": payload["message"], "metadata": metadata},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                         "native_finish_reason": stream.translator.native_finish_reason if stream else None}],
        }
        if chunk["provider"] is None:
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


class _ClientGone(CrossroadsError):
    status = _CLIENT_GONE
    error_type = "cancelled"


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


def _completion_chars(choices: list[dict[str, Any]]) -> int:
    total = 0
    for choice in choices:
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        for call in message.get("tool_calls") or ():
            total += len((call.get("function") or {}).get("arguments") or "")
    return total


__all__ = ["Attempt", "ChatCompletions"]
