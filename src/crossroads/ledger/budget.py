"""Spend against key limits: reserve a request's worst case before it runs, settle to the real cost after.

`MemoryBudget` keeps the figures in this process (exact for one process). `RedisBudget` keeps them in Redis,
one atomic script per reserve and per settle, so any number of gateway processes share one view and a key
can never be taken past its limit by concurrent requests, wherever they run. Keys without a limit cost no
round trip at all.

Redis layout, per key hash `h` (values in nanodollars; `ns` is the link's namespace):
    ns:spend:h:total, ns:spend:h:d:<yyyymmdd>, ns:spend:h:w:<yyyymmdd of Monday>, ns:spend:h:m:<yyyymm>
        settled spend; seeded from the database (SET NX) the first time a key is used, then only increased
    ns:hold:h  hash process-id → nanodollars held by that process's requests in flight

Known limit: if Redis loses its data, counters are re-seeded from the database, which may not yet hold the
last fraction of a second of generations (they are written in batches).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Final, Protocol

from crossroads.errors import PaymentRequired
from crossroads.ledger.keys import Key
from crossroads.storage.base import Store
from crossroads.storage.redis import RedisLink, SharedStateError

PERIOD_TTL: Final = {"d": 3 * 86400, "w": 9 * 86400, "m": 33 * 86400}

_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2, 0, 0} end
local spent = tonumber(redis.call('GET', KEYS[1]))
local held = 0
local holds = redis.call('HGETALL', KEYS[2])
for i = 1, #holds, 2 do
  if redis.call('EXISTS', ARGV[4] .. holds[i]) == 1 then
    held = held + tonumber(holds[i + 1])
  else
    redis.call('HDEL', KEYS[2], holds[i])
  end
end
local nanos = tonumber(ARGV[2])
if spent + held + nanos > tonumber(ARGV[1]) then return {-1, spent, held} end
redis.call('HINCRBY', KEYS[2], ARGV[3], nanos)
return {1, spent, held}
"""

_SETTLE = """
local left = redis.call('HINCRBY', KEYS[5], ARGV[3], -tonumber(ARGV[1]))
if left <= 0 then redis.call('HDEL', KEYS[5], ARGV[3]) end
local cost = tonumber(ARGV[2])
if cost > 0 then
  for i = 1, 4 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], cost) end
  end
end
return 1
"""

_VIEW = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '-1')
local held = 0
local holds = redis.call('HGETALL', KEYS[2])
for i = 1, #holds, 2 do
  if redis.call('EXISTS', ARGV[1] .. holds[i]) == 1 then held = held + tonumber(holds[i + 1]) end
end
return {spent, held}
"""


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


class RedisBudget:
    """Shared spend. On a Redis error it degrades to `MemoryBudget` (per-process figures) and says so."""

    def __init__(self, link: RedisLink, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self._store = store
        self._clock = clock
        self._local = MemoryBudget(clock)
        self._reserve = link.script(_RESERVE)
        self._settle = link.script(_SETTLE)
        self._view = link.script(_VIEW)
        #: Holds taken locally because Redis was down: they are settled locally too.
        self._local_holds: dict[str, int] = {}

    def _keys(self, key: Key) -> tuple[str, str, str, str, str]:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        week = now - dt.timedelta(days=now.weekday())
        base = f"{self._link.ns}:spend:{key.hash}"
        return (f"{base}:total", f"{base}:d:{now:%Y%m%d}", f"{base}:w:{week:%Y%m%d}", f"{base}:m:{now:%Y%m}",
                f"{self._link.ns}:hold:{key.hash}")

    def _period_key(self, key: Key) -> tuple[str, str]:
        total, daily, weekly, monthly, holds = self._keys(key)
        reset = key.record.limit_reset
        return {"daily": daily, "weekly": weekly, "monthly": monthly}.get(reset or "", total), holds

    async def reserve(self, key: Key, nanos: int) -> None:
        spend_key, holds = self._period_key(key)
        try:
            for _ in range(2):
                status, spent, held = await self._reserve(
                    keys=[spend_key, holds],
                    args=[key.record.limit_nanos, nanos, self._link.process_id, self._link.proc_prefix])
                if status == -2:
                    await self._seed(key)
                    continue
                if status == -1:
                    raise refuse(key, nanos, int(spent), int(held))
                return
            raise SharedStateError("spend counters could not be seeded")
        except SharedStateError as exc:
            self._link.warn(str(exc))
            await self._local.reserve(key, nanos)
            self._local_holds[key.hash] = self._local_holds.get(key.hash, 0) + nanos

    async def settle(self, key: Key, reserved: int, cost: int) -> None:
        local = self._local_holds.get(key.hash, 0)
        if local and reserved:
            taken = min(local, reserved)
            self._local_holds[key.hash] = local - taken
            await self._local.settle(key, taken, cost)
            return
        try:
            await self._settle(keys=list(self._keys(key)), args=[reserved, cost, self._link.process_id])
        except SharedStateError as exc:
            self._link.warn(str(exc))
            await self._local.settle(key, 0, cost)

    async def remaining(self, key: Key) -> int | None:
        if key.record.limit_nanos is None:
            return None
        spend_key, holds = self._period_key(key)
        try:
            spent, held = await self._view(keys=[spend_key, holds], args=[self._link.proc_prefix])
            if int(spent) < 0:
                await self._seed(key)
                spent, held = await self._view(keys=[spend_key, holds], args=[self._link.proc_prefix])
        except SharedStateError:
            return await self._local.remaining(key)
        return int(key.record.limit_nanos - int(spent) - int(held))

    async def _seed(self, key: Key) -> None:
        """Start the shared counters from the database's totals (the first process to get here wins)."""
        totals = (await self._store.usage_totals([key.hash], self._clock())).get(key.hash)
        values = (totals.total, totals.daily, totals.weekly, totals.monthly) if totals else (0, 0, 0, 0)
        names = self._keys(key)[:4]
        try:
            pipe = self._link.client.pipeline(transaction=False)
            pipe.set(names[0], values[0], nx=True)
            for name, value, period in zip(names[1:], values[1:], ("d", "w", "m"), strict=True):
                pipe.set(name, value, nx=True, ex=PERIOD_TTL[period])
            await pipe.execute()
        except Exception as exc:
            raise SharedStateError(str(exc)) from exc

    async def close(self) -> None:
        return None
