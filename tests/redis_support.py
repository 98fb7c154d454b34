"""Helpers for tests that talk to the real Redis at 127.0.0.1:6379 (started by .ci/run), or to the broker
that replaces it between the workers of one machine."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import redis.asyncio as aioredis

from crossroads.ledger.shared_budget import SCRIPTS as budget_scripts
from crossroads.ratelimit.redis import SCRIPTS as limit_scripts
from crossroads.storage.broker import Broker
from crossroads.storage.link import Link
from crossroads.storage.local import LocalLink
from crossroads.storage.redis import RedisLink

REDIS_URL = "redis://127.0.0.1:6379/0"


def namespace() -> str:
    """A namespace of our own, so concurrent tests never see each other's keys or channels."""
    return f"crtest-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def link(ns: str) -> AsyncIterator[RedisLink]:
    value = RedisLink(REDIS_URL, ns)
    await value.open()
    try:
        yield value
    finally:
        await value.close()


async def wipe(ns: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{ns}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


Connect = Callable[[], contextlib.AbstractAsyncContextManager[Link]]


@contextlib.asynccontextmanager
async def shared_links(kind: str) -> AsyncIterator[Connect]:
    """A way to open links to one shared state: Redis (a namespace of its own) or a broker of our own, as
    the supervisor of `crossroads serve --workers N` runs it."""
    if kind == "redis":
        ns = namespace()
        try:
            yield lambda: link(ns)
        finally:
            await wipe(ns)
        return
    with tempfile.TemporaryDirectory(prefix="cr-broker-") as directory:
        server = Broker(Path(directory) / "shared.sock", [*budget_scripts, *limit_scripts])
        await server.start()

        @contextlib.asynccontextmanager
        async def local() -> AsyncIterator[Link]:
            value = LocalLink(server.path)
            await value.open()
            try:
                yield value
            finally:
                await value.close()

        try:
            yield local
        finally:
            await server.close()
