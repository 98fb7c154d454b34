"""Generation records reach the database in batches, off the request's critical path.

`record()` puts the record in the spool (see `ledger/spool.py`: it survives a crash of this process) and
appends it to a list; a background task writes what has gathered every `interval` seconds (or
sooner once `batch` records wait). A failed write (the database restarting, a lock) is retried with backoff;
inserts are idempotent by generation id, so a retry can never charge twice. Recent records stay readable in
memory, so `GET /generation` answers the moment a response has ended, before the write lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from crossroads.ledger.spool import Spool
from crossroads.storage.base import GenerationRecord, Store

log = logging.getLogger("crossroads.ledger")

RECENT = 10_000


class LedgerWriter:
    def __init__(self, store: Store, spool: Spool | None = None, *, interval: float = 0.2, batch: int = 500) -> None:
        self._store = store
        self._spool = spool
        self._interval = interval
        self._batch = batch
        self._pending: list[GenerationRecord] = []
        self._recent: OrderedDict[str, GenerationRecord] = OrderedDict()
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def record(self, record: GenerationRecord) -> None:
        if self._spool is not None:
            self._spool.append(record)
        self._pending.append(record)
        recent = self._recent
        recent[record.id] = record
        if len(recent) > RECENT:
            recent.popitem(last=False)
        if len(self._pending) >= self._batch:
            self._wake.set()

    def recent(self, generation_id: str) -> GenerationRecord | None:
        return self._recent.get(generation_id)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crossroads-ledger-writer")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        if self._spool is not None:
            self._spool.close(all_stored=not self._pending)

    async def flush(self) -> None:
        """Write everything pending now (retrying transient failures)."""
        async with self._writing:
            await self._flush()

    async def _flush(self) -> None:
        delay = 0.1
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._store.write_generations(batch)
                if self._spool is not None:
                    self._spool.stored(len(batch))
            except Exception:
                self._pending[:0] = batch
                if self._closing and delay > 5:
                    log.exception("ledger: giving up on %d records at shutdown; they stay in the spool",
                                  len(self._pending))
                    return
                log.warning("ledger: write of %d records failed; retrying in %.1fs", len(batch), delay,
                            exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.flush()
