"""The presets, held in memory so that using one costs no database round trip.

Loaded from storage at start and changed through this class; changes made by other processes arrive the way
key changes do: announced through Redis when it is configured (`storage/changes.py`), and by the periodic
refresh in any case (within a second).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from crossroads.errors import NotFound
from crossroads.storage.base import PresetRecord, PresetVersionRecord, Store


@dataclass(frozen=True, slots=True)
class Preset:
    record: PresetRecord
    version: PresetVersionRecord
    #: The version's config, decoded once.
    config: dict[str, Any]

    @property
    def system_prompt(self) -> str | None:
        return self.version.system_prompt


def _preset(record: PresetRecord, version: PresetVersionRecord) -> Preset:
    return Preset(record, version, orjson.loads(version.config))


class PresetBook:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._presets: dict[str, Preset] = {}
        #: Told the slug of every preset saved here (other processes listen).
        self.on_change: Callable[[str], Awaitable[None]] | None = None

    async def load(self) -> None:
        self._presets = {record.slug: _preset(record, version)
                         for record, version in await self._store.list_presets() if version is not None}

    async def refresh(self) -> None:
        """Take presets saved by other processes."""
        await self.load()

    async def reload(self, slug: str) -> None:
        """A preset changed by another process (all are read again: presets are few, and this is rare)."""
        await self.load()

    def find(self, slug: str) -> Preset | None:
        return self._presets.get(slug)

    def get(self, slug: str) -> Preset:
        preset = self._presets.get(slug)
        if preset is None:
            raise NotFound(f"No preset with slug '{slug}'", metadata={"param": "preset"})
        return preset

    def all(self) -> list[Preset]:
        """Most recently updated first."""
        return sorted(self._presets.values(), key=lambda p: (-p.record.updated_at, p.record.slug))

    async def save(self, slug: str, system_prompt: str | None, config: dict[str, Any]) -> Preset:
        record, version = await self._store.save_preset(slug, system_prompt, orjson.dumps(config).decode(),
                                                        self._clock())
        preset = self._presets[slug] = Preset(record, version, config)
        if self.on_change is not None:
            await self.on_change(slug)
        return preset

    async def versions(self, slug: str) -> list[PresetVersionRecord]:
        return await self._store.list_preset_versions(self.get(slug).record.id)
