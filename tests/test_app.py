"""The gateway's assembly: what `app.py` runs beside the routes."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

from crossroads.app import _refresh
from crossroads.storage.base import KeyRecord
from crossroads.storage.sqlite import SQLiteStore


class Counting:
    def __init__(self) -> None:
        self.reads = 0

    async def refresh(self) -> None:
        self.reads += 1


async def test_held_records_are_read_again_only_when_their_revision_moved(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    await store.open()
    keys, presets, guardrails = Counting(), Counting(), Counting()
    poller = asyncio.create_task(_refresh(store, {"keys": keys, "presets": presets, "guardrails": guardrails},
                                          every=0.01))
    try:
        await asyncio.sleep(0.1)  # the first poll reads everything; the later ones find nothing new
        assert (keys.reads, presets.reads, guardrails.reads) == (1, 1, 1)
        await store.insert_key(KeyRecord(hash="h1", name="n", label="sk-...", created_at=time.time()))
        await asyncio.sleep(0.1)
        assert (keys.reads, presets.reads, guardrails.reads) == (2, 1, 1)
        await store.save_preset("tone", None, "{}", 1.0)
        await asyncio.sleep(0.1)
        assert (keys.reads, presets.reads, guardrails.reads) == (2, 2, 1)
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await store.close()


async def test_a_holder_that_failed_to_read_is_read_again_at_the_next_poll(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    await store.open()

    class Flaky(Counting):
        async def refresh(self) -> None:
            await super().refresh()
            if self.reads == 1:
                raise OSError("the database is away")

    keys = Flaky()
    poller = asyncio.create_task(_refresh(store, {"keys": keys}, every=0.01))
    try:
        await asyncio.sleep(0.1)
        assert keys.reads == 2  # failed once, read again, then nothing new
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await store.close()


def test_what_only_some_gateways_use_is_not_imported_with_the_app() -> None:
    """Idle memory: libraries of plugins, of the catalog importer and of Redis load on first use."""
    code = ("import sys, crossroads.app; "
            "print(' '.join(m for m in ('json_repair', 'jsonschema', 'pypdf', 'tomli_w', 'redis', "
            "'crossroads.catalog.importer', 'crossroads.catalog.refresh') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""
