"""Spend budgets: in one process and shared through Redis by several, under concurrency and failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crossroads.errors import PaymentRequired
from crossroads.ledger.budget import MemoryBudget
from crossroads.ledger.keys import Key, KeyRing
from crossroads.ledger.shared_budget import RedisBudget
from crossroads.storage.base import GenerationRecord
from crossroads.storage.redis import RedisLink
from crossroads.storage.sqlite import SQLiteStore
from tests.redis_support import Connect, link, namespace, shared_links, wipe


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "budget.db")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def ns() -> AsyncIterator[str]:
    value = namespace()
    yield value
    await wipe(value)


@pytest.fixture(params=["redis", "broker"])
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[Connect]:
    async with shared_links(request.param) as value:
        yield value


async def limited_key(store: SQLiteStore, limit: int, **fields: object) -> Key:
    _, key = await KeyRing(store, None).create("limited", limit_nanos=limit, **fields)
    return key


async def test_concurrent_requests_on_two_processes_never_pass_the_limit(store: SQLiteStore,
                                                                        connect: Connect) -> None:
    key = await limited_key(store, 10_000)
    async with connect() as one, connect() as two:
        budgets = [RedisBudget(one, store), RedisBudget(two, store)]
        admitted = 0

        async def request(budget: RedisBudget) -> None:
            nonlocal admitted
            try:
                await budget.reserve(key, 700)
            except PaymentRequired:
                return
            admitted += 1
            await asyncio.sleep(0.001)
            await budget.settle(key, 700, 500)  # each request really cost 500

        await asyncio.gather(*(request(budgets[i % 2]) for i in range(100)))
        spent = 10_000 - (await budgets[0].remaining(key) or 0)
        assert spent == admitted * 500 <= 10_000
        # Once settled, the real costs leave room: exactly 20 requests of 500 fit in 10,000.
        while True:
            try:
                await budgets[admitted % 2].reserve(key, 500)
            except PaymentRequired:
                break
            await budgets[admitted % 2].settle(key, 500, 500)
            admitted += 1
        assert admitted == 20 and await budgets[1].remaining(key) == 0


async def test_counters_are_seeded_from_the_ledger(store: SQLiteStore, connect: Connect) -> None:
    key = await limited_key(store, 1000)
    await store.write_generations([GenerationRecord(id="gen-x", key_hash=key.hash, created_at=time.time(),
                                                    model="a/b", streamed=False, status=200, cost_nanos=900)])
    async with connect() as shared:
        budget = RedisBudget(shared, store)
        assert await budget.remaining(key) == 100
        with pytest.raises(PaymentRequired):
            await budget.reserve(key, 101)
        await budget.reserve(key, 100)


async def test_holds_of_a_dead_process_are_released(store: SQLiteStore, connect: Connect) -> None:
    key = await limited_key(store, 1000)
    async with connect() as alive:
        survivor = RedisBudget(alive, store)
        async with connect() as doomed:
            await RedisBudget(doomed, store).reserve(key, 800)
            with pytest.raises(PaymentRequired):
                await survivor.reserve(key, 300)
        # `doomed` is gone (its heartbeat with it): its hold no longer counts.
        await survivor.reserve(key, 300)


async def test_redis_outage_degrades_to_this_process(store: SQLiteStore, ns: str) -> None:
    key = await limited_key(store, 1000)
    down = RedisLink("redis://127.0.0.1:1/0", ns)  # nothing listens there: every call fails
    try:
        budget = RedisBudget(down, store)
        await budget.reserve(key, 600)
        with pytest.raises(PaymentRequired):
            await budget.reserve(key, 600)
        await budget.settle(key, 600, 100)
        assert key.spend.total == 100
    finally:
        await down.close()


async def test_daily_limit_in_memory(store: SQLiteStore) -> None:
    now = [1_767_225_600.0]
    key = await limited_key(store, 1000, limit_reset="daily")
    budget = MemoryBudget(clock=lambda: now[0])
    await budget.reserve(key, 1000)
    await budget.settle(key, 1000, 1000)
    with pytest.raises(PaymentRequired):
        await budget.reserve(key, 1)
    now[0] += 86400
    await budget.reserve(key, 1000)


async def test_a_busy_key_costs_a_few_round_trips_not_two_per_request(store: SQLiteStore, ns: str) -> None:
    key = await limited_key(store, 1_000_000_000)  # $1
    async with link(ns) as shared:
        budget = RedisBudget(shared, store)
        calls = 0
        lease = budget._lease

        async def counted(**kwargs: object) -> object:
            nonlocal calls
            calls += 1
            return await lease(**kwargs)

        budget._lease = counted  # type: ignore[method-assign]
        for _ in range(1000):
            await budget.reserve(key, 10_000)
            await budget.settle(key, 10_000, 7_000)
        assert calls <= 2
        await budget.flush()
        assert await budget.remaining(key) == 1_000_000_000 - 1000 * 7_000


async def test_an_idle_lease_of_another_process_does_not_refuse_a_request(store: SQLiteStore,
                                                                          connect: Connect) -> None:
    key = await limited_key(store, 10_000)
    async with connect() as one, connect() as two:
        first, second = RedisBudget(one, store), RedisBudget(two, store)
        first.start()  # its unused lease goes back within a flush interval
        await first.reserve(key, 100)  # leases more than it needs
        await first.settle(key, 100, 100)
        await second.reserve(key, 9_900)  # everything left: possible once the first gives its lease back
        assert await second.remaining(key) == 0
        with pytest.raises(PaymentRequired):
            await first.reserve(key, 1)
        await first.close()


async def test_leases_never_let_concurrent_processes_overspend(store: SQLiteStore, ns: str) -> None:
    import random

    limit = 10_000_000
    key = await limited_key(store, limit)
    rng = random.Random(3)
    async with link(ns) as one, link(ns) as two:
        budgets = [RedisBudget(one, store), RedisBudget(two, store)]
        for budget in budgets:
            budget.start()
        charged = 0
        semaphore = asyncio.Semaphore(24)

        async def request(i: int) -> None:
            nonlocal charged
            async with semaphore:
                budget = budgets[i % 2]
                worst = rng.randrange(300_000, 700_000)
                try:
                    await budget.reserve(key, worst)
                except PaymentRequired:
                    return
                await asyncio.sleep(rng.random() / 100)
                cost = rng.randrange(100_000, worst)
                charged += cost
                await budget.settle(key, worst, cost)

        await asyncio.gather(*(request(i) for i in range(300)))
        for budget in budgets:
            await budget.close()
        spent = int(await one.client.get(f"{ns}:spend:{key.hash}:total"))
        assert spent == charged <= limit
        assert charged > limit // 2  # and the budget was used, not refused early
        assert await one.client.hgetall(f"{ns}:hold:{key.hash}") == {}


async def test_requests_extending_one_lease_at_once_each_get_their_own_grant(store: SQLiteStore, ns: str) -> None:
    key = await limited_key(store, 1_000)
    async with link(ns) as one:
        budget = RedisBudget(one, store)
        await budget.reserve(key, 600)
        await budget.settle(key, 600, 0)  # 600 leased and unused: not enough for what follows
        outcomes = await asyncio.gather(budget.reserve(key, 700), budget.reserve(key, 700), return_exceptions=True)
        assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "PaymentRequired"]  # 1,400 > 1,000
        await budget.settle(key, 700, 700)
        await budget.close()
        assert int(await one.client.get(f"{ns}:spend:{key.hash}:total")) == 700
        assert await one.client.hgetall(f"{ns}:hold:{key.hash}") == {}


async def test_a_burst_of_requests_on_an_empty_lease_asks_redis_once(store: SQLiteStore, ns: str) -> None:
    """After a flush gives the unused lease back, the next burst must not send one lease request per request
    to Redis: each would lease a share of the limit, and a few hundred of them would lease all of it away
    and refuse requests that fit well within it."""
    key = await limited_key(store, 1_000_000_000)  # $1: a lease is $0.02
    async with link(ns) as shared:
        budget = RedisBudget(shared, store)
        calls = 0
        lease = budget._lease

        ticks = answered_at = 0

        async def counted(**kwargs: object) -> object:
            nonlocal calls, answered_at
            calls += 1
            await asyncio.sleep(0.001)  # a round trip: the burst's other requests arrive meanwhile
            answer = await lease(**kwargs)
            answered_at = ticks
            return answer

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        budget._lease = counted  # type: ignore[method-assign]
        clock = asyncio.create_task(ticker())
        await budget.reserve(key, 1)  # the key's counters are seeded on first use (one more round trip)
        await budget.settle(key, 1, 0)
        await budget.flush()
        for _ in range(3):
            calls = 0
            await asyncio.gather(*(budget.reserve(key, 10_000) for _ in range(300)))  # $0.003 in all
            assert calls == 1
            # The waiters go on together once the answer is in, not one per turn of the event loop (a
            # convoy that, on a busy gateway, kept some requests waiting for hundreds of milliseconds).
            assert ticks - answered_at <= 10
            for _ in range(300):
                await budget.settle(key, 10_000, 10_000)
            await budget.flush()
        assert await budget.remaining(key) == 1_000_000_000 - 900 * 10_000
        clock.cancel()
        await budget.close()
