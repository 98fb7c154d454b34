"""Account credits: grants (from `crossroads credits add` or the admin endpoint) and their total.

The granted total is cached in memory, so the free-model rate limit (which depends on it) costs nothing per
request; it is refreshed whenever a grant is made here and at start.
"""

from __future__ import annotations

import time

from crossroads.ratelimit.base import FREE_HIGH_BALANCE_USD
from crossroads.storage.base import NANOS_PER_USD, Store


class Credits:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._granted = 0

    async def load(self) -> None:
        self._granted, _ = await self._store.credit_totals()

    async def grant(self, nanos: int, note: str | None, grant_id: str) -> None:
        await self._store.grant_credits(grant_id, nanos, note, time.time())
        await self.load()

    async def totals(self) -> tuple[int, int]:
        granted, used = await self._store.credit_totals()
        self._granted = granted
        return granted, used

    def high_balance(self) -> bool:
        """Whether the account has been granted enough credits for the higher free-model daily limit."""
        return self._granted >= FREE_HIGH_BALANCE_USD * NANOS_PER_USD
