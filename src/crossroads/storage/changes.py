"""Changes announced to every gateway process through Redis pub/sub: keys, presets.

When a key is created, changed, disabled or deleted on one process (or a preset saved), its name — the key's
hash, the preset's slug — is published on `<ns>:<topic>`; every other process reloads it from storage at
once. Without Redis (or while it is unreachable) the periodic refresh still brings every process up to date
within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.exceptions import RedisError

from crossroads.storage.redis import RedisLink


class Announcing(Protocol):
    """What holds a copy of stored things in memory: told of changes made elsewhere, telling of its own."""

    on_change: Callable[[str], Awaitable[None]] | None

    async def reload(self, name: str) -> None: ...


class ChangeEvents:
    def __init__(self, link: RedisLink, topic: str, held: Announcing) -> None:
        self._link = link
        self._channel = f"{link.ns}:{topic}"
        self._held = held

    def start(self) -> None:
        self._held.on_change = self.publish
        self._link.spawn(self._listen_forever(), f"crossroads-{self._channel}-events")

    async def publish(self, name: str) -> None:
        try:
            await self._link.client.publish(self._channel, f"{self._link.process_id}:{name}".encode())
        except (RedisError, OSError) as exc:
            self._link.warn(f"change on {self._channel} not announced: {exc}")

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with self._link.client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        sender, _, name = message["data"].decode().partition(":")
                        if sender != self._link.process_id:
                            await self._held.reload(name)
            except (RedisError, OSError) as exc:
                self._link.warn(f"changes of other processes on {self._channel} not received: {exc}")
                await asyncio.sleep(1)
