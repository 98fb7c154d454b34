"""Key changes announced to every gateway process through the shared-state link (`storage/link.py`).

When a key is created, changed, disabled or deleted on one process, its hash is published on `<ns>:keys`;
every other process reloads that key from storage at once. Without a link (or while it is unreachable) the
periodic refresh of `KeyRing` still brings every process up to date within a second.
"""

from __future__ import annotations

from crossroads.ledger.keys import KeyRing
from crossroads.storage.link import Link, SharedStateError


class KeyEvents:
    def __init__(self, link: Link, keys: KeyRing) -> None:
        self._link = link
        self._keys = keys

    def start(self) -> None:
        self._keys.on_change = self.publish
        self._link.subscribe(f"{self._link.ns}:keys", self._take)

    async def publish(self, key_hash: str) -> None:
        try:
            await self._link.publish(f"{self._link.ns}:keys", f"{self._link.process_id}:{key_hash}".encode())
        except SharedStateError as exc:
            self._link.warn(f"key change not announced: {exc}")

    async def _take(self, data: bytes) -> None:
        sender, _, key_hash = data.decode().partition(":")
        if sender != self._link.process_id:
            await self._keys.reload(key_hash)
