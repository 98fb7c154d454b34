"""Changes announced to every gateway process through the shared-state link (`storage/link.py`: Redis
between machines, the supervisor's broker between the workers of one machine): keys, presets, guardrails.

When a key is created, changed, disabled or deleted on one process (or a preset or guardrail saved), its
name — the key's hash, the preset's slug — is published on `<ns>:<topic>`; every other process reloads it
from storage at once. Without a link (or while it is unreachable) the periodic refresh still brings every
process up to date within a second.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from crossroads.storage.link import Link, SharedStateError


class Announcing(Protocol):
    """What holds a copy of stored things in memory: told of changes made elsewhere, telling of its own."""

    on_change: Callable[[str], Awaitable[None]] | None

    async def reload(self, name: str) -> None: ...


class ChangeEvents:
    def __init__(self, link: Link, topic: str, held: Announcing) -> None:
        self._link = link
        self._channel = f"{link.ns}:{topic}"
        self._held = held

    def start(self) -> None:
        self._held.on_change = self.publish
        self._link.subscribe(self._channel, self._take)

    async def publish(self, name: str) -> None:
        try:
            await self._link.publish(self._channel, f"{self._link.process_id}:{name}".encode())
        except SharedStateError as exc:
            self._link.warn(f"change on {self._channel} not announced: {exc}")

    async def _take(self, data: bytes) -> None:
        sender, _, name = data.decode().partition(":")
        if sender != self._link.process_id:
            await self._held.reload(name)


__all__ = ["Announcing", "ChangeEvents"]
