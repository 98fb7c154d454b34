"""Rate limits per key and for free models, in one process and shared through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from crossroads.catalog.loader import build
from crossroads.errors import RateLimited
from crossroads.ledger.keys import Key, Spend
from crossroads.providers.registry import build_adapters
from crossroads.ratelimit.base import (
    FREE_PER_DAY_HIGH,
    FREE_PER_DAY_LOW,
    FREE_PER_MINUTE,
    Limiter,
    MemoryLimiter,
    rules_for,
)
from crossroads.ratelimit.redis import RedisLimiter
from crossroads.routing.health import Health
from crossroads.routing.plan import Planner, Policy
from crossroads.schema.chat import parse_chat_request
from crossroads.storage.base import KeyRecord
from crossroads.storage.link import Link
from crossroads.storage.redis import RedisLink
from tests.redis_support import namespace, shared_links

DOCUMENT: dict[str, Any] = {
    "providers": {"p": {"name": "P", "base_url": "https://p.test/v1", "api_key_env": "P_KEY"}},
    "models": {
        "a/paid": {"context_length": 8000,
                   "endpoints": [{"provider": "p", "pricing": {"prompt": "1", "completion": "1"}}]},
        "a/free:free": {"context_length": 8000,
                        "endpoints": [{"provider": "p", "pricing": {"prompt": "0", "completion": "0"}}]},
    },
}
PLANNER = Planner(build(DOCUMENT, {"P_KEY": "k"}), build_adapters(), Health(), Policy(simulator_default=False))


def key(**fields: Any) -> Key:
    return Key(KeyRecord(hash=f"h-{id(fields)}", name="k", label="k", created_at=0, **fields), Spend())


def request(model: str, **body: Any) -> tuple[Any, Any]:
    chat = parse_chat_request({"model": model, "messages": [{"role": "user", "content": "hello"}], **body}, model)
    return PLANNER.plan(chat), chat


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0 + 30  # 30 s into a minute and a UTC day

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis", "broker"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def redis_link(kind: str) -> AsyncIterator[Link | None]:
    """The link the shared limiters count through (None for the in-memory limiter)."""
    if kind == "memory":
        yield None
        return
    async with shared_links(kind) as connect, connect() as value:
        yield value


def limiters(kind: str, clock: Clock, shared: Link | None, high: bool = False) -> list[Limiter]:
    if kind == "memory":
        return [MemoryLimiter(lambda: high, clock)]
    assert shared is not None
    return [RedisLimiter(shared, lambda: high, clock), RedisLimiter(shared, lambda: high, clock)]


async def test_key_request_limit(kind: str, redis_link: Link | None) -> None:
    clock = Clock()
    every = limiters(kind, clock, redis_link)
    k = key(rate_limit_requests=3, rate_limit_interval=60)
    route, chat = request("a/paid")
    for i in range(3):
        await every[i % len(every)].check(k, route, chat)  # alternate processes: one shared count
    with pytest.raises(RateLimited) as caught:
        await every[-1].check(k, route, chat)
    headers = caught.value.headers
    assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == str((1_767_225_600 + 60) * 1000)
    assert headers["Retry-After"] == "30"
    clock.now += 30  # a new window
    await every[0].check(k, route, chat)


async def test_tokens_per_minute(kind: str, redis_link: Link | None) -> None:
    every = limiters(kind, Clock(), redis_link)
    k = key(tokens_per_minute=1000)
    route, chat = request("a/paid", max_tokens=400)
    await every[0].check(k, route, chat)
    await every[-1].check(k, route, chat)
    with pytest.raises(RateLimited, match="key-tokens-per-minute"):
        await every[0].check(k, route, chat)


async def test_free_models_per_minute_and_per_day(kind: str, redis_link: Link | None) -> None:
    clock = Clock()
    every = limiters(kind, clock, redis_link)
    k = key()
    route, chat = request("a/free:free")
    used = 0
    for _ in range(FREE_PER_MINUTE):
        await every[used % len(every)].check(k, route, chat)
        used += 1
    with pytest.raises(RateLimited, match="free-models-per-min"):
        await every[0].check(k, route, chat)
    refusal: RateLimited | None = None
    for _ in range(FREE_PER_DAY_LOW // FREE_PER_MINUTE + 1):  # a minute's worth at a time, until refused
        clock.now += 60
        try:
            for _ in range(FREE_PER_MINUTE):
                await every[used % len(every)].check(k, route, chat)
                used += 1
        except RateLimited as exc:
            refusal = exc
            break
    assert refusal is not None
    assert "free-models-per-day" in refusal.message and "Add 10 credits" in refusal.message
    assert refusal.metadata is not None and refusal.metadata["retryable"] is False
    assert used == FREE_PER_DAY_LOW


async def test_high_balance_raises_the_daily_free_limit(kind: str, redis_link: Link | None) -> None:
    clock = Clock()
    every = limiters(kind, clock, redis_link, high=True)
    k = key()
    route, chat = request("a/free:free")
    used = 0
    refusal: RateLimited | None = None
    for _ in range(FREE_PER_DAY_HIGH // FREE_PER_MINUTE + 1):  # a minute's worth at a time, until refused
        try:
            for _ in range(FREE_PER_MINUTE):
                await every[used % len(every)].check(k, route, chat)
                used += 1
        except RateLimited as exc:
            refusal = exc
            break
        clock.now += 60
    assert refusal is not None and refusal.metadata is not None
    assert refusal.metadata["limit_source"] == "free-models-per-day-high-balance"
    assert "Add 10 credits" not in refusal.message
    assert used == FREE_PER_DAY_HIGH > FREE_PER_DAY_LOW


async def test_paid_models_without_key_limits_cost_nothing(kind: str, redis_link: Link | None) -> None:
    every = limiters(kind, Clock(), redis_link)
    k = key()
    route, chat = request("a/paid")
    assert rules_for(k, route, chat, high_balance=False) == []
    for _ in range(500):
        await every[0].check(k, route, chat)
    # Nothing was counted: not even against the free-model limits the same key has on a free model.
    free = rules_for(k, *request("a/free:free"), high_balance=False)
    assert [rule.name for rule in free] == ["free-models-per-min", "free-models-per-day"]
    for rule in free:
        assert await every[0].used(k, rule) == 0


async def test_redis_outage_falls_back_to_this_process() -> None:
    down = RedisLink("redis://127.0.0.1:1/0", namespace())
    try:
        limiter = RedisLimiter(down, lambda: False, Clock())
        k = key(rate_limit_requests=1, rate_limit_interval=60)
        route, chat = request("a/paid")
        await limiter.check(k, route, chat)
        with pytest.raises(RateLimited):
            await limiter.check(k, route, chat)
    finally:
        await down.close()
