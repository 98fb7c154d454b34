"""Charging generations to keys: reserve before the upstream call, settle after it, record the generation.

    admit()   worst-case cost of the request on the dearest endpoint it may reach, held against the key's
              limit (402 if it does not fit) — nothing goes upstream for a key that cannot pay
    settle()  the real cost (exact decimals, rounded once to nanodollars) replaces the hold; the generation
              record goes to the ledger writer; the figure returned is the one shown in `usage.cost`

Zero completion insurance: a generation that ended in error without output tokens is not charged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.ledger.budget import Budget
from crossroads.ledger.cost import Cost, cost_of, worst_case
from crossroads.ledger.keys import Key
from crossroads.ledger.writer import LedgerWriter
from crossroads.schema.usage import Usage
from crossroads.storage.base import NANOS_PER_USD, GenerationRecord

_NANO = Decimal(1).scaleb(-9)
log = logging.getLogger("crossroads.routing")


def to_nanos(usd: Decimal) -> int:
    return int((usd / _NANO).to_integral_value(ROUND_HALF_EVEN))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


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


@dataclass(frozen=True, slots=True)
class Charge:
    cost: Cost
    nanos: int

    @property
    def usd(self) -> Decimal:
        return from_nanos(self.nanos)


class Accountant:
    def __init__(self, budget: Budget, writer: LedgerWriter) -> None:
        self.budget = budget
        self.writer = writer

    async def admit(self, key: Key, endpoints: list[Endpoint], prompt_tokens: int, max_output: int | None) -> Hold:
        if key.record.limit_nanos is None:
            return Hold(key, 0)  # unlimited keys need no reservation
        worst = max(
            worst_case(prompt_tokens, max_output or e.max_completion_tokens or max(e.context_length - prompt_tokens, 1),
                       e.pricing)
            for e in endpoints
        )
        nanos = to_nanos(worst)
        await self.budget.reserve(key, nanos)
        return Hold(key, nanos)

    async def settle(self, hold: Hold, generation: Generation) -> Charge:
        usage = generation.usage
        endpoint = generation.endpoint
        if usage is None or endpoint is None or (generation.status != 200 and usage.completion_tokens == 0):
            charge = Charge(Cost.free(), 0)
        else:
            cost = cost_of(usage, endpoint.pricing)
            charge = Charge(cost, to_nanos(cost.total))
        if generation.trace and (len(generation.trace) > 1 or generation.status != 200):
            # Fallbacks and failures are worth a line in the log; plain successes are not (hot path).
            log.info("generation %s (%s) status %d after %s", generation.id, generation.model, generation.status,
                     ", ".join(f"{a.get('provider')}={a.get('status')}" for a in generation.trace))
        # The record goes to the spool (on disk) before the budget is touched and before the response's last
        # byte: whatever happens next, this charge is in the ledger exactly once.
        self.writer.record(_record(hold.key.hash, generation, charge.nanos))
        if not hold.settled:
            hold.settled = True
            if hold.nanos or hold.key.record.limit_nanos is not None:
                await self.budget.settle(hold.key, hold.nanos, charge.nanos)
            else:
                hold.key.spend.add(charge.nanos)
        return charge


def _record(key_hash: str, g: Generation, nanos: int) -> GenerationRecord:
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
        trace=orjson.dumps(g.trace).decode() if g.trace else None,
    )


def estimate_usage(prompt_chars: int, completion_chars: int, images: int = 0) -> Usage:
    """Token counts when a provider reported none (≈4 characters per token)."""
    return Usage(prompt_tokens=-(-prompt_chars // 4), completion_tokens=-(-completion_chars // 4), images=images,
                 estimated=True)


__all__ = ["NANOS_PER_USD", "Accountant", "Charge", "Generation", "Hold", "estimate_usage", "from_nanos",
           "to_nanos"]
