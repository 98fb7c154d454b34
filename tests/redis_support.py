"""Helpers for tests that talk to the real Redis at 127.0.0.1:6379 (started by .ci/run)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

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
