"""Generation records leave the request's critical path here.

`record()` puts the record in the spool (`ledger/spool.py`: a memory copy that survives a crash of this
process) and keeps it in memory, so `GET /generation` answers the moment a response has ended; the shipper
process (`ledger/shipper.py`) stores it in the database moments later. `flush()` waits until everything
recorded so far is stored, for reads that need exact totals from the database (`/key`, `/activity`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from crossroads.ledger.shipper import Shipper
from crossroads.ledger.spool import Spool
from crossroads.storage.base import GenerationRecord

log = logging.getLogger("crossroads.ledger")

RECENT = 10_000


class LedgerWriter:
    def __init__(self, spool: Spool, shipper: Shipper) -> None:
        self._spool = spool
        self._shipper = shipper
        self._recent: OrderedDict[str, GenerationRecord] = OrderedDict()

    async def start(self) -> None:
        self._spool.open()
        await self._shipper.start()

    def record(self, record: GenerationRecord) -> None:
        self._spool.append(record)
        recent = self._recent
        recent[record.id] = record
        if len(recent) > RECENT:
            recent.popitem(last=False)

    def recent(self, generation_id: str) -> GenerationRecord | None:
        return self._recent.get(generation_id)

    def recent_records(self) -> list[GenerationRecord]:
        return list(self._recent.values())

    def backlog(self) -> tuple[int, float]:
        """Bytes spooled and not yet stored, and the age in seconds of the oldest record not yet stored."""
        return self._shipper.backlog()

    async def started(self) -> bool:
        """Wait until the shipper has made its first pass (`Shipper.start` waits for it only where gateways
        that are gone left records); False if it is late."""
        return await self._shipper.started()

    async def flush(self) -> None:
        """Wait until every record so far is in the database (or a few seconds have passed)."""
        if not await self._shipper.synced():
            log.warning("ledger: the database is behind the spool; figures may lag")

    async def close(self) -> None:
        await self._shipper.close()
