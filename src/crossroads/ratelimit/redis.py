"""Rate limits shared by every gateway process through Redis (or the broker of `crossroads serve --workers
N`: `storage/link.py`): one atomic script checks every rule of a
request and counts it against all of them, or against none.

A Redis outage degrades to this process's own counters (`MemoryLimiter`) with a logged warning; the
gateway keeps serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from crossroads.ledger.keys import Key
from crossroads.ratelimit.base import MemoryLimiter, Rule, refuse, rules_for
from crossroads.routing.plan import Route
from crossroads.schema.request import ChatRequest
from crossroads.storage.link import Link, Memory, Script, SharedStateError

# KEYS: one counter per rule (its current window); ARGV: limit, cost, ttl per rule.
_CHECK_LUA = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  local base = (i - 1) * 3
  if used > 0 and used + tonumber(ARGV[base + 2]) > tonumber(ARGV[base + 1]) then return {i, used} end
end
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  redis.call('INCRBY', key, ARGV[base + 2])
  redis.call('EXPIRE', key, ARGV[base + 3])
end
return {0, 0}
"""



def _check_py(db: Memory, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    for i, key in enumerate(keys):
        used = db.get(key) or 0
        if used > 0 and used + int(args[3 * i + 1]) > int(args[3 * i]):
            return [i + 1, used]
    for i, key in enumerate(keys):
        db.incrby(key, int(args[3 * i + 1]))
        db.expire(key, int(args[3 * i + 2]))
    return [0, 0]


CHECK: Final = Script("ratelimit-check", _CHECK_LUA, _check_py)
SCRIPTS: Final = (CHECK,)


class RedisLimiter:
    def __init__(self, link: Link, high_balance: Callable[[], bool],
                 clock: Callable[[], float] = time.time) -> None:
        self._link = link
        self._high_balance = high_balance
        self._clock = clock
        self._check = link.script(CHECK)
        self._fallback = MemoryLimiter(high_balance, clock)

    async def check(self, key: Key, route: Route, chat: ChatRequest) -> None:
        rules = rules_for(key, route, chat, self._high_balance())
        if not rules:
            return
        now = self._clock()
        keys = [f"{self._link.ns}:rl:{key.hash}:{rule.name}:{rule.window_start(now)}" for rule in rules]
        args: list[int] = []
        for rule in rules:
            args += [rule.limit, rule.cost, rule.window + 5]
        try:
            index, used = await self._check(keys=keys, args=args)
        except SharedStateError as exc:
            self._link.warn(str(exc))
            await self._fallback.check(key, route, chat)
            return
        if index:
            raise refuse(rules[int(index) - 1], int(used), now)

    async def used(self, key: Key, rule: Rule) -> int:
        try:
            value = await self._link.get_int(
                f"{self._link.ns}:rl:{key.hash}:{rule.name}:{rule.window_start(self._clock())}")
        except SharedStateError:
            return await self._fallback.used(key, rule)
        return value or 0

    async def close(self) -> None:
        return None
