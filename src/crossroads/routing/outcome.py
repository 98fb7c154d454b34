"""What became of one admitted request: the attempts made for it, the endpoint that served it (if any), and
how it ended — recorded once, in one place.

An `Outcome` owns everything that follows from an attempt: the endpoint's health, the routing trace, and
the generation record with its charge (through the request's `Tab`). The dispatcher tells it what each
attempt did; whoever holds it last ends it with `finish(End...)`:

    End.DONE          the reply reached the client whole
    End.FAILED        every attempt failed, or the stream broke after it began (`error` says how)
    End.CLIENT_GONE   the client went away first

`Served` (a whole reply) and `OpenStream` (a stream whose first content has arrived) are the two outcomes
an endpoint can give; both know how to report usage, estimating it when the provider reported none.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from typing import Any, Final

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import CrossroadsError, UpstreamError
from crossroads.ledger.accounting import Charge, Tab, estimate_usage
from crossroads.plugins.web import NATIVE, uses_results
from crossroads.providers.base import Completion, Piece, StreamTranslator
from crossroads.providers.sse import Event, StreamDecoder
from crossroads.providers.transport import Upstream
from crossroads.routing.health import Health
from crossroads.routing.health import Outcome as HealthOutcome
from crossroads.routing.transcript import Transcript
from crossroads.schema.chat import ChatRequest
from crossroads.schema.usage import Usage

#: The status nginx made famous: the client closed the connection.
CLIENT_GONE_STATUS = 499


class End(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    CLIENT_GONE = "client gone"

#: A failed attempt's message in the routing trace is cut to this many characters.
MESSAGE_CHARS: Final = 300


@dataclass(slots=True)
class Attempt:
    """One entry of a generation's routing trace."""

    provider: str
    endpoint: str
    model: str
    status: int
    error_type: str | None
    latency_ms: int
    #: When the attempt began, in milliseconds from the request's admission (traces place it by this).
    start_ms: int
    #: Why the attempt failed, as the provider (or the gateway) said it, cut to `MESSAGE_CHARS`.
    message: str | None = None

    def public(self) -> dict[str, Any]:
        return {"provider": self.provider, "endpoint": self.endpoint, "model": self.model,
                "status": self.status, "error_type": self.error_type, "latency_ms": self.latency_ms,
                "start_ms": self.start_ms, "message": self.message}


class Outcome:
    """The attempts for one request and how it ended. `finish` is the only place a generation's record is
    filled in and settled; it runs once (later calls return the first charge)."""

    __slots__ = ("endpoint", "first_byte", "health", "model", "request", "started", "tab", "trace")

    def __init__(self, request: ChatRequest, tab: Tab, health: Health) -> None:
        self.request = request
        self.tab = tab
        self.health = health
        self.trace: list[Attempt] = []
        #: The serving endpoint, once one answered (set by `Served`/`OpenStream`).
        self.model: Model | None = None
        self.endpoint: Endpoint | None = None
        self.started = 0.0
        self.first_byte = 0.0

    # -- attempts (told by the dispatcher) ---------------------------------------------------------------

    def attempt_failed(self, model: Model, endpoint: Endpoint, error: UpstreamError, started: float) -> None:
        self._health(endpoint, error.upstream_status)
        self._trace(model, endpoint, error.code, error.kind, started, error.message[:MESSAGE_CHARS])

    def _health(self, endpoint: Endpoint, status: int, ttft: float | None = None,
                tokens_per_second: float | None = None) -> None:
        """An attempt's result, for routing health and the metrics alike."""
        health = self.health
        health.record(HealthOutcome(endpoint.key, status, health.now(), ttft, tokens_per_second))
        self.tab.accountant.metrics.attempt(endpoint.provider.name, endpoint.model_id, status)

    def _trace(self, model: Model, endpoint: Endpoint, status: int, error_type: str | None,
               started: float, message: str | None = None) -> None:
        self.trace.append(Attempt(endpoint.provider.name, endpoint.key, model.id, status, error_type,
                                  int((time.monotonic() - started) * 1000), int((started - self.tab.clock) * 1000),
                                  message))

    def public_trace(self) -> list[dict[str, Any]]:
        return [a.public() for a in self.trace]

    # -- the end -----------------------------------------------------------------------------------------

    def reported(self) -> tuple[Usage | None, int, str | None, str | None, str | None]:
        """What the serving endpoint reported: (usage, completion characters, upstream id, finish reason,
        native finish reason). Nothing before an endpoint served."""
        return None, 0, None, None, None

    def output(self) -> list[dict[str, Any]]:
        """The messages the serving endpoint answered (kept only when generations' content is)."""
        return []

    async def finish(self, end: End, error: CrossroadsError | None = None) -> Charge:
        tab = self.tab
        if tab.charge is not None:
            return tab.charge
        generation = tab.generation
        now = time.monotonic()
        if end is End.DONE:
            generation.status = 200
        elif end is End.CLIENT_GONE:
            generation.status = CLIENT_GONE_STATUS
            generation.cancelled = True
        else:
            generation.status = error.code if error is not None else 500
            generation.error_message = error.message if error is not None else "internal error"
        if self.model is not None and self.endpoint is not None:
            usage, completion_chars, upstream_id, finish_reason, native = self.reported()
            if usage is None:
                usage = estimate_usage(self.request.prompt_chars, completion_chars)
            usage.images = usage.images or self.request.images
            applied = self.request.applied
            if applied is not None and applied.web_searches and uses_results(self.request, self.endpoint):
                usage.web_search_requests = (usage.web_search_requests or 0) + applied.web_searches
                generation.web_search_engine, generation.num_search_results = applied.web_engine, applied.web_results
            elif usage.web_search_requests:
                generation.web_search_engine = NATIVE  # the provider searched
            generation.model = self.model.id
            generation.endpoint = self.endpoint
            generation.usage = usage
            generation.upstream_id = upstream_id
            generation.finish_reason = "error" if end is End.FAILED else finish_reason
            generation.native_finish_reason = native
            generation.latency_ms = int((self.first_byte - tab.clock) * 1000)
            generation.generation_time_ms = int((now - self.started) * 1000)
            self._served_attempt(end, error, usage, now)
        else:
            generation.latency_ms = int((now - tab.clock) * 1000)
        generation.trace = self.public_trace()
        if tab.accountant.keep_content:
            generation.trace_content = {"input": self.request.messages, "output": self.output()}
        return await tab.settle()

    def _served_attempt(self, end: End, error: CrossroadsError | None, usage: Usage, now: float) -> None:
        """Health and the trace entry of the attempt that served."""
        assert self.model is not None
        assert self.endpoint is not None
        if end is End.DONE:
            generation = now - self.started
            tokens = None if usage.estimated else usage.completion_tokens
            rate = tokens / generation if tokens and generation > 0 else None
            self._health(self.endpoint, 200, self.first_byte - self.started, rate)
            self._trace(self.model, self.endpoint, 200, None, self.started)
        elif end is End.CLIENT_GONE:  # says nothing about the provider: no health record
            self._trace(self.model, self.endpoint, CLIENT_GONE_STATUS, "cancelled", self.started)
        else:
            status = error.code if error is not None else 500
            if isinstance(error, UpstreamError):  # the provider's failure, not one of the gateway's own
                self._health(self.endpoint, status)
            self._trace(self.model, self.endpoint, status, error.kind if error is not None else "server",
                        self.started, error.message[:MESSAGE_CHARS] if error is not None else None)


class Served(Outcome):
    """A whole reply from one endpoint."""

    __slots__ = ("completion",)
    completion: Completion

    def serve(self, model: Model, endpoint: Endpoint, completion: Completion, started: float,
              first_byte: float) -> Served:
        self.model, self.endpoint, self.completion = model, endpoint, completion
        self.started, self.first_byte = started, first_byte
        return self

    def reported(self) -> tuple[Usage | None, int, str | None, str | None, str | None]:
        completion = self.completion
        first = completion.choices[0]
        return (completion.usage, _completion_chars(completion.choices), completion.upstream_id,
                first.get("finish_reason"), first.get("native_finish_reason"))

    def output(self) -> list[dict[str, Any]]:
        return [c["message"] for c in self.completion.choices if isinstance(c.get("message"), dict)]


class OpenStream(Outcome):
    """An upstream stream whose first content has arrived; `pieces` are the chunks translated so far."""

    __slots__ = ("decoder", "finished", "pieces", "transcript", "translator", "upstream")
    upstream: Upstream
    translator: StreamTranslator
    decoder: StreamDecoder
    pieces: list[Piece]
    #: The upstream stream ended properly (until `open`, there is none to end).
    finished: bool
    #: What the stream said, gathered only when generations' content is kept.
    transcript: Transcript | None

    def __init__(self, request: ChatRequest, tab: Tab, health: Health) -> None:
        super().__init__(request, tab, health)
        self.finished = True
        self.transcript = None

    def open(self, model: Model, endpoint: Endpoint, upstream: Upstream, translator: StreamTranslator,
             decoder: StreamDecoder, pieces: list[Piece], started: float) -> OpenStream:
        self.model, self.endpoint = model, endpoint
        self.upstream, self.translator, self.decoder, self.pieces = upstream, translator, decoder, pieces
        self.started, self.first_byte = started, time.monotonic()
        self.finished = False
        if self.tab.accountant.keep_content:
            self.transcript = Transcript()
            self.transcript.feed(pieces)
        return self

    @property
    def ready(self) -> bool:
        """`next_pieces()` would return without waiting for the upstream."""
        return self.finished or self.upstream.ready

    async def next_pieces(self) -> list[Piece] | None:
        """The next translated chunks (possibly none, when an upstream read held no whole event); None once
        the stream has ended properly. Raises `UpstreamError` if it breaks."""
        if self.finished:
            return None
        translator = self.translator
        data = await self.upstream.next()
        if data is not None:
            pieces = pieces_of(self.decoder.feed(data), translator)
            if self.transcript is not None:
                self.transcript.feed(pieces)
            return pieces
        pieces = pieces_of(self.decoder.flush(), translator)
        pieces.extend(translator.close())
        if self.transcript is not None:
            self.transcript.feed(pieces)
        if translator.finish_reason is None:
            assert self.endpoint is not None
            raise UpstreamError(502, "Provider ended the stream before it finished",
                                provider=self.endpoint.provider.name, error_type="provider_unavailable")
        self.finished = True
        return pieces

    async def finish(self, end: End, error: CrossroadsError | None = None) -> Charge:
        if not self.finished:
            self.upstream.close()  # stop the provider generating (and billing) at once
        return await super().finish(end, error)

    def reported(self) -> tuple[Usage | None, int, str | None, str | None, str | None]:
        t = self.translator
        return t.usage, t.completion_chars, t.upstream_id, t.finish_reason, t.native_finish_reason

    def output(self) -> list[dict[str, Any]]:
        return self.transcript.messages() if self.transcript is not None else []


class EndsOnFailure:
    """Ends the outcome when no endpoint served: failed with the error raised (an unexpected exception as
    an internal error), or client gone."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        if error is None:
            return
        if isinstance(error, asyncio.CancelledError | ConnectionResetError):
            await self.outcome.finish(End.CLIENT_GONE)
        else:
            await self.outcome.finish(End.FAILED, error if isinstance(error, CrossroadsError) else None)


def pieces_of(events: list[Event], translator: StreamTranslator) -> list[Piece]:
    """The chunks a batch of upstream SSE events translates to (possibly none)."""
    pieces: list[Piece] = []
    for name, data in events:
        pieces.extend(translator.feed(name, data))
    return pieces


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


__all__ = ["Attempt", "End", "EndsOnFailure", "OpenStream", "Outcome", "Served"]
