"""Spend against key limits, shared by every gateway process through Redis (or, between the workers of
one `crossroads serve --workers N` without Redis, through its broker: `storage/link.py`) — without a round
trip per request.

Each process leases budget from Redis: a lease is a hold, recorded in Redis under the process's id, that
the process then spends locally, request by request. A request is admitted from the local lease when it
covers the request's worst case; only when it does not does the process go to Redis for more (one atomic
script: granted only if the key's settled spend, plus everything held by every process, plus the new lease
fits in the limit). Settled costs and the unused part of each lease go back to Redis in one script per key
every `FLUSH_INTERVAL` seconds. So the sum of all holds and all settled spend never exceeds a key's limit —
concurrent requests on any number of processes can never take it past the limit — and a busy key costs a
few round trips a second instead of two per request.

Leases are sized `limit / LEASE_FRACTION` (never less than the request at hand, never more than what is
left), so near a key's limit they shrink to single requests and the processes share what remains fairly.

Redis layout, per key hash `h` (nanodollars; `ns` is the link's namespace):
    ns:spend:h:total, ns:spend:h:d:<yyyymmdd>, ns:spend:h:w:<yyyymmdd of Monday>, ns:spend:h:m:<yyyymm>
        settled spend; seeded from the database (SET NX) the first time a key is used, then only increased
    ns:hold:h  hash process-id → nanodollars that process holds (its leases); holds of a process whose
        heartbeat expired (`storage/redis.py`) are dropped, so a killed process frees its holds

A Redis error degrades to this process's own figures (`MemoryBudget`) with a logged warning.
Known limit: if Redis loses its data, counters are re-seeded from the database, which may not yet hold the
last fraction of a second of generations.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from crossroads.ledger.budget import MemoryBudget, refuse
from crossroads.ledger.keys import Key
from crossroads.storage.base import Store, period_starts
from crossroads.storage.link import Link, Memory, Script, SharedStateError

PERIOD_TTL: Final = {"d": 3 * 86400, "w": 9 * 86400, "m": 33 * 86400}
LEASE_FRACTION: Final = 50
FLUSH_INTERVAL: Final = 0.05

# KEYS: spend counter of the limit's period, holds hash. ARGV: limit, needed, wanted, process, proc prefix.
# Returns {granted, spent, held}: granted 0 when even `needed` does not fit; -2 when counters need seeding.
_LEASE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2, 0, 0} end
local spent = tonumber(redis.call('GET', KEYS[1]))
local held = 0
local holds = redis.call('HGETALL', KEYS[2])
for i = 1, #holds, 2 do
  if redis.call('EXISTS', ARGV[5] .. holds[i]) == 1 then
    held = held + tonumber(holds[i + 1])
  else
    redis.call('HDEL', KEYS[2], holds[i])
  end
end
local available = tonumber(ARGV[1]) - spent - held
local needed = tonumber(ARGV[2])
if available < needed then return {0, spent, held} end
local grant = math.min(math.max(tonumber(ARGV[3]), needed), available)
redis.call('HINCRBY', KEYS[2], ARGV[4], grant)
return {grant, spent, held}
"""

# KEYS: total, daily, weekly, monthly spend counters, holds hash. ARGV: spent, released, process.
_SETTLE_LUA = """
local drop = tonumber(ARGV[1]) + tonumber(ARGV[2])
if drop > 0 then
  local left = redis.call('HINCRBY', KEYS[5], ARGV[3], -drop)
  if left <= 0 then redis.call('HDEL', KEYS[5], ARGV[3]) end
end
local cost = tonumber(ARGV[1])
if cost > 0 then
  for i = 1, 4 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], cost) end
  end
end
return 1
"""

_VIEW_LUA = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '-1')
local held = 0
local holds = redis.call('HGETALL', KEYS[2])
for i = 1, #holds, 2 do
  if redis.call('EXISTS', ARGV[1] .. holds[i]) == 1 then held = held + tonumber(holds[i + 1]) end
end
return {spent, held}
"""



def _live_holds(db: Memory, holds_key: str, proc_prefix: str, drop_dead: bool) -> int:
    holds = db.hash(holds_key)
    held = 0
    for process, amount in list(holds.items()):
        if db.exists(proc_prefix + process):
            held += amount
        elif drop_dead:
            del holds[process]
    return held


def _lease_py(db: Memory, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    spent = db.get(keys[0])
    if spent is None:
        return [-2, 0, 0]
    held = _live_holds(db, keys[1], str(args[4]), drop_dead=True)
    available = int(args[0]) - spent - held
    needed = int(args[1])
    if available < needed:
        return [0, spent, held]
    grant = min(max(int(args[2]), needed), available)
    holds = db.hash(keys[1])
    holds[str(args[3])] = holds.get(str(args[3]), 0) + grant
    return [grant, spent, held]


def _settle_py(db: Memory, keys: Sequence[str], args: Sequence[Any]) -> int:
    cost = int(args[0])
    drop = cost + int(args[1])
    if drop > 0:
        holds = db.hash(keys[4])
        left = holds.get(str(args[2]), 0) - drop
        if left <= 0:
            holds.pop(str(args[2]), None)
        else:
            holds[str(args[2])] = left
    if cost > 0:
        for key in keys[:4]:
            if db.exists(key):
                db.incrby(key, cost)
    return 1


def _view_py(db: Memory, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    spent = db.get(keys[0])
    return [-1 if spent is None else spent, _live_holds(db, keys[1], str(args[0]), drop_dead=False)]


LEASE: Final = Script("budget-lease", _LEASE_LUA, _lease_py)
SETTLE: Final = Script("budget-settle", _SETTLE_LUA, _settle_py)
VIEW: Final = Script("budget-view", _VIEW_LUA, _view_py)
SCRIPTS: Final = (LEASE, SETTLE, VIEW)


@dataclass(slots=True)
class _Lease:
    """This process's share of one key's budget. `free + reserved + used` is what Redis holds for us."""

    key: Key
    free: int = 0  # leased, not yet promised to a request
    reserved: int = 0  # promised to requests in flight
    used: int = 0  # settled costs not yet reported to Redis
    extending: int = 0  # requests waiting for Redis to extend this lease
    #: Set while one request asks Redis for more; the others wait for it — all woken at once, not handed on
    #: one per event-loop turn as a lock would — and usually find that the new lease covers them too.
    asking: asyncio.Future[None] | None = None


class RedisBudget:
    def __init__(self, link: Link, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self._store = store
        self._clock = clock
        self._local = MemoryBudget(clock)
        self._lease = link.script(LEASE)
        self._settle = link.script(SETTLE)
        self._view = link.script(VIEW)
        self._leases: dict[str, _Lease] = {}
        #: Holds taken locally because Redis was down: they are settled locally too.
        self._local_holds: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever(), name="crossroads-budget-flush")

    # -- requests ------------------------------------------------------------------------------------------

    async def reserve(self, key: Key, nanos: int) -> None:
        lease = self._leases.get(key.hash)
        if lease is None:
            lease = self._leases[key.hash] = _Lease(key)
        lease.key = key  # the record may have changed (a new limit)
        if lease.free < nanos:
            lease.extending += 1
            try:
                await self._extend(lease, nanos)
            except SharedStateError as exc:
                self._link.warn(str(exc))
                await self._local.reserve(key, nanos)
                self._local_holds[key.hash] = self._local_holds.get(key.hash, 0) + nanos
                return
            finally:
                lease.extending -= 1
        lease.free -= nanos
        lease.reserved += nanos

    async def settle(self, key: Key, reserved: int, cost: int) -> None:
        local = self._local_holds.get(key.hash, 0)
        if local and reserved:
            taken = min(local, reserved)
            self._local_holds[key.hash] = local - taken
            await self._local.settle(key, taken, cost)
            return
        lease = self._leases.get(key.hash)
        if lease is None:  # reserved before a restart of this object: report the cost directly
            lease = self._leases[key.hash] = _Lease(key)
        lease.reserved -= reserved
        lease.free += reserved - cost
        lease.used += cost
        key.spend.roll(self._clock())
        key.spend.add(cost)

    async def remaining(self, key: Key) -> int | None:
        if key.record.limit_nanos is None:
            return None
        await self.flush()
        spend_key, holds = self._period_key(key)
        try:
            spent, held = await self._view(keys=[spend_key, holds], args=[self._link.proc_prefix])
            if int(spent) < 0:
                await self._seed(key)
                spent, held = await self._view(keys=[spend_key, holds], args=[self._link.proc_prefix])
        except SharedStateError:
            return await self._local.remaining(key)
        lease = self._leases.get(key.hash)
        ours_free = lease.free if lease else 0  # leased but promised to nobody: still spendable
        return int(key.record.limit_nanos - int(spent) - int(held) + ours_free)

    # -- Redis ---------------------------------------------------------------------------------------------

    async def _extend(self, lease: _Lease, nanos: int) -> None:
        """Lease enough that `lease.free` covers `nanos`, or raise PaymentRequired. Before refusing, give
        back our own unused lease and wait once for other processes to give back theirs."""
        key = lease.key
        limit = key.record.limit_nanos or 0
        spend_key, holds = self._period_key(key)
        seeded = released = waited = False
        while True:
            needed = nanos - lease.free
            if needed <= 0:  # a lease granted while this request waited covers it too
                return
            if lease.asking is not None:
                await asyncio.shield(lease.asking)
                continue
            lease.asking = asyncio.get_running_loop().create_future()
            try:
                granted, spent, held = await self._lease(
                    keys=[spend_key, holds],
                    args=[limit, needed, max(limit // LEASE_FRACTION, needed), self._link.process_id,
                          self._link.proc_prefix])
            finally:
                asking, lease.asking = lease.asking, None
                asking.set_result(None)
            if granted > 0:
                lease.free += int(granted)
                continue
            if granted == -2:
                if seeded:
                    raise SharedStateError("spend counters vanished right after seeding")
                seeded = True
                await self._seed(key)
                continue
            if not released and lease.free:
                released = True
                await self._release(lease)
                continue
            if not waited and int(held) > lease.reserved + lease.used + lease.free:
                waited = True
                await asyncio.sleep(2 * FLUSH_INTERVAL)  # other processes' unused leases come back
                continue
            raise refuse(key, nanos, int(spent), int(held))

    async def _release(self, lease: _Lease) -> bool:
        """Report `used` and give back `free`; True if anything was given back."""
        used, free = lease.used, lease.free
        if not used and not free:
            return False
        lease.used -= used
        lease.free -= free
        try:
            await self._settle(keys=list(self._keys(lease.key)), args=[used, free, self._link.process_id])
        except SharedStateError:
            lease.used += used
            lease.free += free
            raise
        return free > 0

    async def flush(self) -> None:
        for lease in list(self._leases.values()):
            try:
                await self._release(lease)
            except SharedStateError as exc:
                self._link.warn(f"spend not reported: {exc}")
                return
            if not (lease.reserved or lease.used or lease.free or lease.extending):
                self._leases.pop(lease.key.hash, None)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()

    def _keys(self, key: Key) -> tuple[str, str, str, str, str]:
        # The periods are the database's (`period_starts`), so Redis and the ledger agree on them.
        day, week, month = (dt.datetime.fromtimestamp(start, dt.UTC) for start in period_starts(self._clock()))
        base = f"{self._link.ns}:spend:{key.hash}"
        return (f"{base}:total", f"{base}:d:{day:%Y%m%d}", f"{base}:w:{week:%Y%m%d}", f"{base}:m:{month:%Y%m}",
                f"{self._link.ns}:hold:{key.hash}")

    def _period_key(self, key: Key) -> tuple[str, str]:
        total, daily, weekly, monthly, holds = self._keys(key)
        reset = key.record.limit_reset
        return {"daily": daily, "weekly": weekly, "monthly": monthly}.get(reset or "", total), holds

    async def _seed(self, key: Key) -> None:
        """Start the shared counters from the database's totals (the first process to get here wins)."""
        totals = (await self._store.usage_totals([key.hash], self._clock())).get(key.hash)
        values = (totals.total, totals.daily, totals.weekly, totals.monthly) if totals else (0, 0, 0, 0)
        names = self._keys(key)[:4]
        ttls = (None, PERIOD_TTL["d"], PERIOD_TTL["w"], PERIOD_TTL["m"])
        await self._link.set_missing(list(zip(names, values, ttls, strict=True)))

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):
            await self.flush()
