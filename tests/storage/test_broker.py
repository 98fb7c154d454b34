"""The broker of `serve --workers N` and the workers' link to it: Redis's data model in memory, errors
answered not fatal, and a link that falls back while the broker is away and reconnects when it is back."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossroads.ratelimit.redis import CHECK
from crossroads.storage.broker import Broker, MemoryStore
from crossroads.storage.link import Script, SharedStateError
from crossroads.storage.local import LocalLink


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cr-broker-") as directory:  # short: Unix socket paths are
        yield Path(directory) / "shared.sock"  # limited to ~100 bytes


def test_values_expire_and_hashes_exist_while_not_empty() -> None:
    now = [100.0]
    memory = MemoryStore(clock=lambda: now[0])
    memory.set("a", 5, ttl=10)
    memory.incrby("b", 2)
    memory.expire("b", 1)
    assert memory.get("a") == 5 and memory.exists("b")
    now[0] += 5
    assert memory.get("a") == 5 and not memory.exists("b") and memory.get("b") is None
    assert memory.incrby("b", 3) == 3  # a new value, no longer expiring
    now[0] += 100
    assert memory.get("a") is None and memory.get("b") == 3
    holds = memory.hash("h")
    assert not memory.exists("h")
    holds["p"] = 1
    assert memory.exists("h")
    del holds["p"]
    memory.sweep()
    assert not memory.exists("h")


async def test_a_failing_operation_is_an_error_for_its_caller_only(socket_path: Path) -> None:
    def broken(*_: object) -> object:
        raise KeyError("no such counter")

    broker = Broker(socket_path, [CHECK, Script("broken", "", broken)])
    await broker.start()
    link = LocalLink(socket_path)
    await link.open()
    try:
        with pytest.raises(SharedStateError, match="no such counter"):
            await link.script(Script("broken", "", broken))(keys=[], args=[])
        check = link.script(CHECK)
        assert await check(keys=["cr:rl:k"], args=[1, 1, 60]) == [0, 0]
        assert await check(keys=["cr:rl:k"], args=[1, 1, 60]) == [1, 1]  # over the limit: refused
        assert await link.get_int("cr:rl:k") == 1
    finally:
        await link.close()
        await broker.close()


async def test_the_link_falls_back_while_the_broker_is_away_and_reconnects(socket_path: Path) -> None:
    broker = Broker(socket_path, [CHECK])
    await broker.start()
    link = LocalLink(socket_path)
    await link.open()
    received: list[bytes] = []
    link.subscribe("cr:keys", received.append)
    try:
        await broker.close()
        await asyncio.sleep(0.05)
        with pytest.raises(SharedStateError):
            await link.get_int("x")
        broker = Broker(socket_path, [CHECK])  # a new broker at the same place (its state starts empty)
        await broker.start()
        for _ in range(100):
            try:
                await link.set_missing([("x", 7, None)])
                break
            except SharedStateError:
                await asyncio.sleep(0.05)
        assert await link.get_int("x") == 7
        await link.publish("cr:keys", b"hello")  # the subscription was renewed on reconnection
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [b"hello"]
    finally:
        await link.close()
        await broker.close()
