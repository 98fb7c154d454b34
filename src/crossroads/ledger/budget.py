"""Spend against key limits: reserve a request's worst case before it runs, settle to the real cost after.

`MemoryBudget` keeps the figures in this process: exact for one process, and what every deployment
without Redis uses. `ledger/shared_budget.py` shares them between processes through Redis. Keys without a
limit need neither: the accountant skips the budget for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from crossroads.errors import PaymentRequired
from crossroads.ledger.keys import Key


class Budget(Protocol):
    async def reserve(self, key: Key, nanos: int) -> None:
        """Hold `nanos` against the key's limit, or raise PaymentRequired (holding nothing)."""

    async def settle(self, key: Key, reserved: int, cost: int) -> None:
        """Release a hold and record the real cost."""

    async def remaining(self, key: Key) -> int | None:
        """Nanodollars the key may still spend (after holds), None when unlimited."""
        ...

    async def close(self) -> None: ...


def refuse(key: Key, nanos: int, spent: int, held: int) -> PaymentRequired:
    limit = key.record.limit_nanos or 0
    period = key.record.limit_reset or "total"
    return PaymentRequired(
        f"This request needs up to ${nanos / 1e9:.6f}, but this key has ${max(limit - spent - held, 0) / 1e9:.6f} "
        f"left of its ${limit / 1e9:.6f} {period} limit (${held / 1e9:.6f} held by requests in flight). "
        "Lower max_tokens, or raise the key's limit.",
        metadata={"limit_source": "crossroads_key_limit",
                  "reason": "weight_exceeds_budget" if nanos > limit - spent else "in_flight_budget_exhausted"},
    )


class MemoryBudget:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def reserve(self, key: Key, nanos: int) -> None:
        remaining = key.remaining(self._clock())
        if remaining is not None and nanos > remaining:
            spent = key.spend.in_period(key.record.limit_reset)
            raise refuse(key, nanos, spent, key.reserved)
        key.reserved += nanos

    async def settle(self, key: Key, reserved: int, cost: int) -> None:
        key.reserved -= reserved
        key.spend.roll(self._clock())
        key.spend.add(cost)

    async def remaining(self, key: Key) -> int | None:
        return key.remaining(self._clock())

    async def close(self) -> None:
        return None
