"""The guardrails and their key assignments, held in memory so that checking a request costs no database round
trip. Loaded at start and changed through this class; other processes' changes arrive as key changes do
(`storage/changes.py`, and the periodic refresh within a second)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from crossroads.errors import NotFound
from crossroads.guardrails.rules import RULE_FIELDS, Guardrail
from crossroads.storage.base import GuardrailKeyRecord, GuardrailRecord, Store


class GuardrailBook:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._rails: dict[str, Guardrail] = {}
        self._assignments: list[GuardrailKeyRecord] = []
        #: Key hash → the guardrails assigned to it.
        self._by_key: dict[str, tuple[Guardrail, ...]] = {}
        #: Told the id of every guardrail changed here (other processes listen).
        self.on_change: Callable[[str], Awaitable[None]] | None = None

    async def load(self) -> None:
        rails = {r.id: Guardrail(r, orjson.loads(r.rules)) for r in await self._store.list_guardrails()}
        self._take(rails, await self._store.list_guardrail_keys())

    def _take(self, rails: dict[str, Guardrail], assignments: list[GuardrailKeyRecord]) -> None:
        by_key: dict[str, list[Guardrail]] = {}
        for assignment in assignments:
            rail = rails.get(assignment.guardrail_id)
            if rail is not None:
                by_key.setdefault(assignment.key_hash, []).append(rail)
        self._rails, self._assignments = rails, assignments
        self._by_key = {key_hash: tuple(found) for key_hash, found in by_key.items()}

    async def refresh(self) -> None:
        await self.load()

    async def reload(self, guardrail_id: str) -> None:
        """A guardrail changed by another process (all are read again: they are few, and this is rare)."""
        await self.load()

    async def _changed(self, guardrail_id: str) -> None:
        await self.load()
        if self.on_change is not None:
            await self.on_change(guardrail_id)

    # -- reading ---------------------------------------------------------------------------------------------

    def of_key(self, key_hash: str) -> tuple[Guardrail, ...]:
        return self._by_key.get(key_hash, ())

    def get(self, guardrail_id: str) -> Guardrail:
        rail = self._rails.get(guardrail_id)
        if rail is None:
            raise NotFound(f"No guardrail with id {guardrail_id}")
        return rail

    def all(self) -> list[Guardrail]:
        return list(self._rails.values())

    def assignments(self, guardrail_id: str | None = None) -> list[GuardrailKeyRecord]:
        return [a for a in self._assignments if guardrail_id is None or a.guardrail_id == guardrail_id]

    def keys_of(self, guardrail_id: str) -> list[str]:
        return [a.key_hash for a in self._assignments if a.guardrail_id == guardrail_id]

    # -- changing --------------------------------------------------------------------------------------------

    async def create(self, name: str, description: str | None, rules: dict[str, Any]) -> Guardrail:
        record = GuardrailRecord(str(uuid.uuid4()), name, description, _dump(rules), self._clock())
        await self._store.save_guardrail(record)
        await self._changed(record.id)
        return self.get(record.id)

    async def update(self, guardrail_id: str, changes: dict[str, Any]) -> Guardrail:
        old = self.get(guardrail_id)
        rules = {**old.rules, **{k: v for k, v in changes.items() if k in RULE_FIELDS}}
        record = GuardrailRecord(old.record.id, changes.get("name") or old.record.name,
                                 changes.get("description", old.record.description),
                                 _dump(rules), old.record.created_at, self._clock())
        await self._store.save_guardrail(record)
        await self._changed(guardrail_id)
        return self.get(guardrail_id)

    async def delete(self, guardrail_id: str) -> None:
        self.get(guardrail_id)
        await self._store.delete_guardrail(guardrail_id)
        await self._changed(guardrail_id)

    async def assign(self, guardrail_id: str, key_hashes: list[str]) -> int:
        self.get(guardrail_id)
        count = await self._store.assign_guardrail_keys(guardrail_id, key_hashes, self._clock())
        await self._changed(guardrail_id)
        return count

    async def unassign(self, guardrail_id: str, key_hashes: list[str]) -> int:
        self.get(guardrail_id)
        count = await self._store.unassign_guardrail_keys(guardrail_id, key_hashes)
        await self._changed(guardrail_id)
        return count


def _dump(rules: dict[str, Any]) -> str:
    return orjson.dumps({k: v for k, v in rules.items() if v is not None}).decode()
