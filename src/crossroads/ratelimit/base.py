"""Which rate limits apply to a request, and the limiter interface.

Limits, each a fixed window counted per key:
- the key's own request limit (`rate_limit_requests` per `rate_limit_interval` seconds), if set;
- the key's tokens per minute (`tokens_per_minute`), counted with the request's estimated prompt tokens
  plus its output cap, if set;
- for free models (a `:free` id, or every endpoint of the route free), OpenRouter's free-tier limits:
  `FREE_PER_MINUTE` requests per minute and `FREE_PER_DAY_LOW` requests per UTC day, raised to
  `FREE_PER_DAY_HIGH` once the account has been granted at least `FREE_HIGH_BALANCE_USD` in credits.

Over a limit: 429 in OpenRouter's shape, with `Retry-After` and `X-RateLimit-Limit/Remaining/Reset` (epoch
milliseconds) headers, mirrored in `error.metadata.headers`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from crossroads.errors import RateLimited
from crossroads.ledger.keys import Key
from crossroads.routing.plan import Route
from crossroads.schema.request import ChatRequest

FREE_PER_MINUTE: Final = 20
FREE_PER_DAY_LOW: Final = 50
FREE_PER_DAY_HIGH: Final = 1000
FREE_HIGH_BALANCE_USD: Final = 10


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # limit_source, e.g. "key-requests", "free-models-per-day"
    limit: int
    window: int  # seconds; 86400 windows align to UTC days
    cost: int = 1  # units this request consumes (1 request, or N tokens)

    def window_start(self, now: float) -> int:
        return int(now // self.window) * self.window


class Limiter(Protocol):
    async def check(self, key: Key, route: Route, chat: ChatRequest) -> None:
        """Count the request against every rule that applies, or raise `RateLimited` (counting nothing)."""
        ...

    async def used(self, key: Key, rule: Rule) -> int:
        """How much of `rule` the key has used in the current window."""
        ...

    async def close(self) -> None: ...


def free_daily_rule(high_balance: bool) -> Rule:
    if high_balance:
        return Rule("free-models-per-day-high-balance", FREE_PER_DAY_HIGH, 86400)
    return Rule("free-models-per-day", FREE_PER_DAY_LOW, 86400)


def rules_for(key: Key, route: Route, chat: ChatRequest, high_balance: bool) -> list[Rule]:
    rules = []
    record = key.record
    if record.rate_limit_requests and record.rate_limit_interval:
        rules.append(Rule("key-requests", record.rate_limit_requests, record.rate_limit_interval))
    if record.tokens_per_minute:
        tokens = chat.prompt_tokens_estimate() + (chat.max_output or 0)
        rules.append(Rule("key-tokens-per-minute", record.tokens_per_minute, 60, cost=tokens))
    model = route.groups[0][0]
    if model.id.endswith(":free") or all(e.pricing.is_free() for e in route.endpoints()):
        rules.append(Rule("free-models-per-min", FREE_PER_MINUTE, 60))
        rules.append(free_daily_rule(high_balance))
    return rules


def refuse(rule: Rule, used: int, now: float) -> RateLimited:
    reset = rule.window_start(now) + rule.window
    remaining = max(rule.limit - used, 0)
    headers = {
        "X-RateLimit-Limit": str(rule.limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset * 1000),
        "Retry-After": str(max(1, int(reset - now + 0.999))),
    }
    if rule.name == "free-models-per-day":
        hint = (f" Add {FREE_HIGH_BALANCE_USD} credits to unlock {FREE_PER_DAY_HIGH} free model requests "
                "per day")
    else:
        hint = ""
    return RateLimited(
        f"Rate limit exceeded: {rule.name}.{hint}",
        metadata={"headers": {k: v for k, v in headers.items() if k.startswith("X-")},
                  "limit_source": rule.name, "provider_name": None,
                  "retryable": rule.window < 86400},
        headers=headers,
    )


class MemoryLimiter:
    """Fixed-window counters in this process. Exact for one process; with several processes each keeps
    its own counts (use the Redis limiter there)."""

    def __init__(self, high_balance: Callable[[], bool], clock: Callable[[], float] = time.time) -> None:
        self._high_balance = high_balance
        self._clock = clock
        self._counts: dict[tuple[str, str, int], int] = {}
        self._sweep_at = 0.0

    async def check(self, key: Key, route: Route, chat: ChatRequest) -> None:
        rules = rules_for(key, route, chat, self._high_balance())
        if not rules:
            return
        now = self._clock()
        counts = self._counts
        slots = [(key.hash, rule.name, rule.window_start(now)) for rule in rules]
        for rule, slot in zip(rules, slots, strict=True):
            used = counts.get(slot, 0)
            if used + rule.cost > rule.limit and used > 0:
                raise refuse(rule, used, now)
        for rule, slot in zip(rules, slots, strict=True):
            counts[slot] = counts.get(slot, 0) + rule.cost
        if now >= self._sweep_at:
            self._sweep(now)

    async def used(self, key: Key, rule: Rule) -> int:
        return self._counts.get((key.hash, rule.name, rule.window_start(self._clock())), 0)

    def _sweep(self, now: float) -> None:
        """Forget windows that have ended (at most once a minute)."""
        self._sweep_at = now + 60
        self._counts = {slot: n for slot, n in self._counts.items() if slot[2] + 86400 > now}

    async def close(self) -> None:
        return None
