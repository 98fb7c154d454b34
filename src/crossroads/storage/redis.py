"""The connection to Redis, for state shared by several gateway processes, and this process's heartbeat.

Every key and channel starts with a namespace (`CROSSROADS_REDIS_NAMESPACE`, default `cr`), so several
deployments can share one Redis. Every process has an id and keeps `<ns>:proc:<id>` alive (expiring after
`HEARTBEAT_TTL` seconds); shared
records that belong to one process (in-flight spend holds) are ignored and cleaned up once its heartbeat is
gone, so a process killed mid-request cannot leave money reserved forever.

It implements `Link` (`storage/link.py`). Redis errors are translated here into `SharedStateError`; every
user of this link has an in-process fallback, so a Redis outage degrades limits to per-process ones with a
logged warning and never takes the gateway down. The scripts assume a standalone Redis (or a primary), not a
Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crossroads.errors import ConfigError
from crossroads.storage.link import Script, SharedStateError, Subscriber

__all__ = ["RedisLink", "SharedStateError"]

log = logging.getLogger("crossroads.shared")

HEARTBEAT_TTL: Final = 15
HEARTBEAT_EVERY: Final = 5.0
WARN_EVERY: Final = 60.0
#: Connections to Redis per process: requests in flight share them; two hold subscriptions.
MAX_CONNECTIONS: Final = 32


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped", task.get_name(), exc_info=task.exception())


class RedisLink:
    def __init__(self, url: str, namespace: str = "cr") -> None:
        self.url = url
        self.ns = namespace
        self.process_id = uuid.uuid4().hex[:16]
        # A bounded pool that queues callers for a free connection (for up to `timeout` seconds) rather than
        # failing them when a burst of requests outnumbers it, as the default pool does.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=2, decode_responses=False, socket_connect_timeout=2,
            socket_timeout=2, health_check_interval=30)
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._heartbeat: asyncio.Task[None] | None = None
        self._warned_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise ConfigError(f"CROSSROADS_REDIS_URL: cannot reach Redis at {self.url}: {exc}") from exc
        await self._beat()
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="crossroads-redis-heartbeat")

    async def close(self) -> None:
        for task in [self._heartbeat, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(RedisError, OSError):
            await self.client.delete(self.proc_key(self.process_id))
        await self.client.aclose()

    @property
    def proc_prefix(self) -> str:
        return f"{self.ns}:proc:"

    def proc_key(self, process_id: str) -> str:
        return self.proc_prefix + process_id

    async def _beat(self) -> None:
        await self.client.set(self.proc_key(self.process_id), b"1", ex=HEARTBEAT_TTL)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            try:
                await self._beat()
            except (RedisError, OSError) as exc:
                self.warn(f"heartbeat failed: {exc}")

    def script(self, script: Script) -> Callable[..., Awaitable[Any]]:
        """A Lua script called by `await run(keys=[...], args=[...])`; errors become SharedStateError."""
        registered = self.client.register_script(script.lua)

        async def run(keys: list[str], args: list[Any]) -> Any:
            try:
                return await registered(keys=keys, args=args)
            except (RedisError, OSError) as exc:
                raise SharedStateError(str(exc)) from exc

        return run

    async def get_int(self, key: str) -> int | None:
        try:
            value = await self.client.get(key)
        except (RedisError, OSError) as exc:
            raise SharedStateError(str(exc)) from exc
        return None if value is None else int(value)

    async def set_missing(self, values: Sequence[tuple[str, int, int | None]]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, value, ttl in values:
                pipe.set(key, value, nx=True, ex=ttl)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SharedStateError(str(exc)) from exc

    async def publish(self, channel: str, data: bytes) -> None:
        try:
            await self.client.publish(channel, data)
        except (RedisError, OSError) as exc:
            raise SharedStateError(str(exc)) from exc

    def subscribe(self, channel: str, receive: Subscriber) -> None:
        self.spawn(self._listen_forever(channel, receive), f"crossroads-listen-{channel}")

    async def _listen_forever(self, channel: str, receive: Subscriber) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            result = receive(message["data"])
                            if result is not None:
                                await result
            except (RedisError, OSError) as exc:
                self.warn(f"messages on {channel} not received: {exc}")
                await asyncio.sleep(1)

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background task for the life of the link (subscribers); a task that dies is logged."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        task.add_done_callback(_report)
        self._tasks.append(task)

    def warn(self, message: str) -> None:
        """Log a degradation at most once a minute (an outage must not flood the log)."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("Redis unavailable, using per-process state: %s", message)
