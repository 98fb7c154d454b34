"""Key changes announced to every gateway process through Redis pub/sub.

When a key is created, changed, disabled or deleted on one process, its hash is published on `<ns>:keys`;
every other process reloads that key from storage at once. Without Redis (or while it is unreachable) the
periodic refresh of `KeyRing` still brings every process up to date within a second.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from crossroads.ledger.keys import KeyRing
from crossroads.storage.redis import RedisLink

log = logging.getLogger("crossroads.ledger")


class KeyEvents:
    def __init__(self, link: RedisLink, keys: KeyRing) -> None:
        self._link = link
        self._keys = keys

    def start(self) -> None:
        self._keys.on_change = self.publish
        self._link.spawn(self._listen_forever(), "crossroads-key-events")

    async def publish(self, key_hash: str) -> None:
        try:
            await self._link.client.publish(f"{self._link.ns}:keys", f"{self._link.process_id}:{key_hash}".encode())
        except (RedisError, OSError) as exc:
            self._link.warn(f"key change not announced: {exc}")

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with self._link.client.pubsub() as pubsub:
                    await pubsub.subscribe(f"{self._link.ns}:keys")
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        sender, _, key_hash = message["data"].decode().partition(":")
                        if sender != self._link.process_id:
                            await self._keys.reload(key_hash)
            except (RedisError, OSError) as exc:
                self._link.warn(f"key changes of other processes not received: {exc}")
                await asyncio.sleep(1)
