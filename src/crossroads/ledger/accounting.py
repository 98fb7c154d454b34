"""Charging generations to keys: reserve before the upstream call, settle after it, record the generation.

    admit()   worst-case cost of the request on the dearest endpoint it may reach, held against the key's
              limit (402 if it does not fit) — nothing goes upstream for a key that cannot pay
    settle()  the real cost (exact decimals, rounded once to nanodollars) replaces the hold; the generation
              record goes to the ledger writer; the figure returned is the one shown in `usage.cost`

Zero completion insurance: a generation that ended in error without output tokens is not charged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.ledger import content
from crossroads.ledger.budget import Budget
from crossroads.ledger.cost import Cost, cost_of, from_nanos, to_nanos, worst_nanos
from crossroads.ledger.keys import Key
from crossroads.ledger.writer import LedgerWriter
from crossroads.metrics.recorder import Metrics, NoMetrics
from crossroads.schema.usage import Usage
from crossroads.storage.base import NANOS_PER_USD, GenerationRecord

#: The largest key limit and the largest single credit grant, in USD: amounts are stored as 64-bit integer
#: nanodollars (at most 9.2e9 USD), and sums of them must fit too.
MAX_LIMIT_USD: Final = 1_000_000_000
MAX_GRANT_USD: Final = 1_000_000
log = logging.getLogger("crossroads.routing")
ledger_log = logging.getLogger("crossroads.ledger")


@dataclass(slots=True)
class Hold:
    key: Key
    nanos: int
    settled: bool = False


@dataclass(slots=True)
class Generation:
    """What happened, as the ledger records it."""

    id: str
    model: str
    streamed: bool
    started: float  # wall clock (unix seconds)
    status: int = 200
    endpoint: Endpoint | None = None
    usage: Usage | None = None
    upstream_id: str | None = None
    cancelled: bool = False
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    latency_ms: int | None = None
    generation_time_ms: int | None = None
    http_referer: str | None = None
    app_title: str | None = None
    user_agent: str | None = None
    external_user: str | None = None
    session_id: str | None = None
    error_message: str | None = None
    trace: list[dict[str, Any]] | None = None  # the routing trace, one entry per attempt
    #: Prompt and completion, only with content logging on (`ledger/content.py`).
    content: dict[str, Any] | None = None
    #: The prompt and completion (`{"input": messages, "output": messages}`) for traces, when they carry it.
    trace_content: dict[str, Any] | None = None
    #: What was asked of the model, in OpenTelemetry's GenAI terms (`gen_ai.operation.name`).
    operation: str = "chat"
    #: Who searched the web for the reply (the backend's API name, or `native`) and how many results the
    #: backend found; None without a search.
    web_search_engine: str | None = None
    num_search_results: int | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    cost: Cost

    @property
    def nanos(self) -> int:
        return self.cost.nanos

    @property
    def usd(self) -> Decimal:
        return from_nanos(self.nanos)


@dataclass(slots=True)
class Tab:
    """An admitted request's account: its hold and its generation record, settled exactly once. `clock` is
    when it was admitted (monotonic seconds)."""

    accountant: Accountant
    hold: Hold
    generation: Generation
    clock: float = field(default_factory=time.monotonic)
    charge: Charge | None = None
    #: The inbound API the request came by (`chat`, `messages`, `embeddings`...), for the metrics.
    api: str = "chat"

    async def settle(self) -> Charge:
        """Charge the generation as recorded so far and release the hold; once (later calls return the
        first charge)."""
        if self.charge is None:
            self.charge = await self.accountant.settle(self.hold, self.generation)
            self.accountant.metrics.settled(self)
        return self.charge

    async def abandon(self) -> None:
        """End a request that nothing else ended (an unexpected failure): recorded as an internal error, its
        hold released. A no-op once settled."""
        if self.charge is None:
            self.generation.status = 500
            self.generation.error_message = "internal error"
            await self.settle()


#: A generation's content above this many bytes (as JSON) is not kept: its record carries none.
CONTENT_BYTES: Final = 256 * 1024


class Accountant:
    def __init__(self, budget: Budget, writer: LedgerWriter, metrics: Metrics | None = None, *,
                 keep_content: bool = False) -> None:
        self.budget = budget
        self.writer = writer
        #: Where every settled request is counted (`GET /metrics`).
        self.metrics = metrics or NoMetrics()
        #: Generations carry their prompt and completion to the ledger's spool (for traces); never stored.
        self.keep_content = keep_content

    async def admit(self, key: Key, endpoints: list[Endpoint], prompt_tokens: int, max_output: int | None,
                    completions: int = 1) -> Hold:
        """Reserve the request's worst case: `completions` choices (`n`), each as long as it may be."""
        if key.record.limit_nanos is None:
            return Hold(key, 0)  # unlimited keys need no reservation
        nanos = max(worst_nanos(prompt_tokens, completions * (max_output or e.max_completion_tokens
                                                              or max(e.context_length - prompt_tokens, 1)),
                                e.pricing)
                    for e in endpoints)
        await self.budget.reserve(key, nanos)
        return Hold(key, nanos)

    async def settle(self, hold: Hold, generation: Generation) -> Charge:
        """Charge the generation and release its hold. Never raises for a failure to record: whatever goes
        wrong while recording, the hold is released and the failure logged loudly."""
        usage = generation.usage
        endpoint = generation.endpoint
        if usage is None or endpoint is None or (generation.status != 200 and usage.completion_tokens == 0):
            charge = Charge(Cost.free())
        else:
            charge = Charge(cost_of(usage, endpoint.pricing))
        if generation.trace and (len(generation.trace) > 1 or generation.status != 200):
            # Fallbacks and failures are worth a line in the log; plain successes are not (hot path).
            log.info("generation %s (%s) status %d after %s", generation.id, generation.model, generation.status,
                     ", ".join(f"{a.get('provider')}={a.get('status')}" for a in generation.trace))
        # The record goes to the spool (on disk) before the budget is touched and before the response's last
        # byte: whatever happens next, this charge is in the ledger exactly once.
        self._record(hold, generation, charge)
        if not hold.settled:
            hold.settled = True
            if hold.nanos or hold.key.record.limit_nanos is not None:
                await self.budget.settle(hold.key, hold.nanos, charge.nanos)
            else:
                hold.key.spend.add(charge.nanos)
        return charge

    def _record(self, hold: Hold, generation: Generation, charge: Charge) -> None:
        """Put the generation in the ledger; if its record cannot be written as it is, write it with its text
        made safe; if even that fails, say so at CRITICAL. Never raises."""
        try:
            self.writer.record(_record(hold.key.hash, generation, charge.nanos))
            return
        except Exception:
            ledger_log.exception("generation %s could not be recorded as it was; recording it with its text "
                                 "fields made safe", generation.id)
        try:
            self.writer.record(_safe(_record(hold.key.hash, generation, charge.nanos, trace=False), generation))
        except Exception:
            ledger_log.critical("generation %s (key %s, %d nanodollars) is NOT in the ledger", generation.id,
                                hold.key.record.label, charge.nanos, exc_info=True)


def _safe(record: GenerationRecord, generation: Generation) -> GenerationRecord:
    """The record with every text field valid UTF-8 of bounded length, and its trace likewise."""
    changes: dict[str, Any] = {name: _clean(getattr(record, name)) for name in _TEXT_FIELDS}
    if generation.trace:
        changes["trace"] = orjson.dumps(_clean(generation.trace)).decode()
    return dataclasses.replace(record, **changes)


_TEXT_FIELDS = ("model", "provider_name", "endpoint", "upstream_id", "finish_reason", "native_finish_reason",
                "http_referer", "app_title", "user_agent", "external_user", "session_id", "error_message")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")[:4096]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(1 << 63) <= value < 1 << 63:
        return str(value)
    return value


def _record(key_hash: str, g: Generation, nanos: int, trace: bool = True) -> GenerationRecord:
    usage = g.usage
    endpoint = g.endpoint
    return GenerationRecord(
        id=g.id,
        key_hash=key_hash,
        created_at=g.started,
        model=g.model,
        streamed=g.streamed,
        status=g.status,
        provider_name=endpoint.provider.name if endpoint else None,
        endpoint=endpoint.key if endpoint else None,
        upstream_id=g.upstream_id,
        cancelled=g.cancelled,
        finish_reason=g.finish_reason,
        native_finish_reason=g.native_finish_reason,
        latency_ms=g.latency_ms,
        generation_time_ms=g.generation_time_ms,
        tokens_prompt=usage.prompt_tokens if usage else 0,
        tokens_completion=usage.completion_tokens if usage else 0,
        tokens_reasoning=usage.reasoning_tokens if usage else None,
        tokens_cached=usage.cached_tokens if usage else None,
        tokens_cache_write=usage.cache_write_tokens if usage else None,
        num_media_prompt=usage.images if usage else 0,
        usage_estimated=usage.estimated if usage else False,
        cost_nanos=nanos,
        http_referer=g.http_referer,
        app_title=g.app_title,
        user_agent=g.user_agent,
        external_user=g.external_user,
        session_id=g.session_id,
        error_message=g.error_message,
        trace=orjson.dumps(g.trace).decode() if g.trace and trace else None,
        content=content.encode(g.content),
        trace_content=_content(g.trace_content) if g.trace_content and trace else None,
        operation=g.operation,
        web_search_engine=g.web_search_engine,
        num_search_results=g.num_search_results,
    )


def _content(kept: dict[str, Any]) -> str | None:
    text = orjson.dumps(kept)
    return text.decode() if len(text) <= CONTENT_BYTES else None


def estimate_usage(prompt_chars: int, completion_chars: int, images: int = 0) -> Usage:
    """Token counts when a provider reported none (≈4 characters per token)."""
    return Usage(prompt_tokens=-(-prompt_chars // 4), completion_tokens=-(-completion_chars // 4), images=images,
                 estimated=True)


__all__ = ["MAX_GRANT_USD", "MAX_LIMIT_USD", "NANOS_PER_USD", "Accountant", "Charge", "Generation", "Hold", "Tab",
           "estimate_usage", "from_nanos", "to_nanos"]
