"""API keys: creation, lookup on every request, limits and live spend.

Keys are held in memory (loaded from storage at start, changed through this class), so authenticating a
request costs one SHA-256 and one dict lookup — no database round trip. Only a key this process has not
heard of yet (just created elsewhere) costs one storage look-up, once. The secret itself is never stored
or logged: only its SHA-256 (the key's public `hash`) and a masked label.

`Key.spend` and `Key.reserved` are this process's view of a key's spend; `ledger/budget.py` decides which
view (this process's, or the one shared through Redis) limits are enforced against.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from crossroads.errors import Forbidden, NotFound, Unauthorized
from crossroads.storage.base import KeyRecord, Store, UsageTotals, period_starts

KEY_PREFIX = "sk-cr-v1-"
MISS_LOOKUPS_PER_SECOND: Final = 20
UNKNOWN_REMEMBERED: Final = 4096


def hash_secret(secret: str) -> str:
    # A header may carry bytes that are not UTF-8 (seen as lone surrogates): such a secret matches no key,
    # but hashing it must not fail.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def mask(secret: str) -> str:
    return f"{secret[:len(KEY_PREFIX) + 3]}...{secret[-3:]}"


@dataclass(slots=True)
class Spend:
    """Settled spend in the current UTC day/week/month and all time, in nanodollars."""

    total: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    periods: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def roll(self, now: float) -> None:
        starts = period_starts(now)
        if starts != self.periods:
            day, week, month = self.periods
            if starts[0] != day:
                self.daily = 0
            if starts[1] != week:
                self.weekly = 0
            if starts[2] != month:
                self.monthly = 0
            self.periods = starts

    def add(self, nanos: int) -> None:
        self.total += nanos
        self.daily += nanos
        self.weekly += nanos
        self.monthly += nanos

    def in_period(self, reset: str | None) -> int:
        return {"daily": self.daily, "weekly": self.weekly, "monthly": self.monthly}.get(reset or "", self.total)


@dataclass(slots=True)
class Key:
    record: KeyRecord
    spend: Spend = field(default_factory=Spend)
    reserved: int = 0

    @property
    def hash(self) -> str:
        return self.record.hash

    def remaining(self, now: float) -> int | None:
        """Nanodollars left under the limit (after in-flight reservations); None when unlimited."""
        if self.record.limit_nanos is None:
            return None
        self.spend.roll(now)
        return self.record.limit_nanos - self.spend.in_period(self.record.limit_reset) - self.reserved


class KeyRing:
    def __init__(self, store: Store, admin_key: str | None, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._admin_hash = hash_secret(admin_key) if admin_key else None
        self._clock = clock
        self._keys: dict[str, Key] = {}
        #: Hashes storage did not know either (oldest first), and the budget of storage look-ups for misses.
        self._unknown: dict[str, None] = {}
        self._lookup_window = 0.0
        self._lookups = 0
        #: Told the hash of every key created, changed or deleted here (other processes listen).
        self.on_change: Callable[[str], Awaitable[None]] | None = None

    async def load(self) -> None:
        records = await self._store.list_keys()
        now = self._clock()
        totals = await self._store.usage_totals([r.hash for r in records], now)
        keys = {}
        for record in records:
            usage = totals.get(record.hash, UsageTotals())
            keys[record.hash] = Key(record, Spend(usage.total, usage.daily, usage.weekly, usage.monthly,
                                                  period_starts(now)))
        self._keys = keys

    async def refresh(self) -> None:
        """Take key records changed by other processes (the CLI, other gateway processes): new keys appear,
        deleted ones are forgotten, changed ones (disabled, new limit) replace the old record. Spend stays
        as tracked here."""
        records = {r.hash: r for r in await self._store.list_keys()}
        for key_hash in [h for h in self._keys if h not in records]:
            self._keys.pop(key_hash, None)
        for record in records.values():
            self.replace(record)

    def __len__(self) -> int:
        return len(self._keys)

    # -- authentication --------------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Key:
        secret = _bearer(authorization)
        digest = hash_secret(secret)
        key = self._keys.get(digest)
        if key is None:
            if self.is_admin(authorization):
                raise Forbidden("Management keys cannot be used for inference; create an API key with "
                                "POST /api/v1/keys")
            key = await self._look_up(digest)
        if key is None or not hmac.compare_digest(key.record.hash, digest):
            raise Unauthorized("User not found.")
        record = key.record
        if record.disabled:
            raise Unauthorized("This API key is disabled.")
        if record.expires_at is not None and record.expires_at <= self._clock():
            raise Unauthorized("This API key has expired.")
        return key

    async def _look_up(self, digest: str) -> Key | None:
        """A key this process has not heard of yet: created a moment ago by another process or the CLI, its
        announcement still on the way. Storage is asked once per unknown hash, and at most
        `MISS_LOOKUPS_PER_SECOND` times a second, so a flood of made-up keys cannot load the database."""
        if digest in self._unknown:
            return None
        now = time.monotonic()
        if now - self._lookup_window >= 1.0:
            self._lookup_window, self._lookups = now, 0
        if self._lookups >= MISS_LOOKUPS_PER_SECOND:
            return None
        self._lookups += 1
        record = await self._store.get_key(digest)
        if record is None:
            self._unknown[digest] = None
            if len(self._unknown) > UNKNOWN_REMEMBERED:
                del self._unknown[next(iter(self._unknown))]
            return None
        self.replace(record)
        return self._keys.get(digest)

    def is_admin(self, authorization: str | None) -> bool:
        if self._admin_hash is None or not authorization:
            return False
        try:
            digest = hash_secret(_bearer(authorization))
        except Unauthorized:
            return False
        return hmac.compare_digest(digest, self._admin_hash)

    def require_admin(self, authorization: str | None) -> None:
        if self._admin_hash is None:
            raise Forbidden("No management key is configured; set CROSSROADS_ADMIN_KEY to use this endpoint")
        _bearer(authorization)
        if not self.is_admin(authorization):
            raise Forbidden("Only management keys can perform this operation")

    # -- management ------------------------------------------------------------------------------------------

    async def create(self, name: str, **fields: Any) -> tuple[str, Key]:
        secret = new_secret()
        record = KeyRecord(hash=hash_secret(secret), name=name, label=mask(secret), created_at=self._clock(),
                           **fields)
        await self._store.insert_key(record)
        key = Key(record, Spend(periods=period_starts(self._clock())))
        self._keys[record.hash] = key
        await self._announce(record.hash)
        return secret, key

    def get(self, key_hash: str) -> Key:
        key = self._keys.get(key_hash)
        if key is None:
            raise NotFound(f"No key with hash {key_hash}")
        return key

    def all(self) -> list[Key]:
        return sorted(self._keys.values(), key=lambda k: (k.record.created_at, k.hash))

    async def update(self, key_hash: str, changes: dict[str, Any]) -> Key:
        key = self.get(key_hash)
        record = await self._store.update_key(key_hash, changes)
        if record is None:
            raise NotFound(f"No key with hash {key_hash}")
        key.record = record
        await self._announce(key_hash)
        return key

    async def delete(self, key_hash: str) -> None:
        self.get(key_hash)
        # Forget it here first: from this instant the key no longer authenticates on this process.
        self._keys.pop(key_hash, None)
        await self._store.delete_key(key_hash)
        await self._announce(key_hash)

    async def reload(self, key_hash: str) -> None:
        """Take one key as storage has it now (changed by another process)."""
        record = await self._store.get_key(key_hash)
        if record is None:
            self.forget(key_hash)
        else:
            self.replace(record)

    async def _announce(self, key_hash: str) -> None:
        if self.on_change is not None:
            await self.on_change(key_hash)

    def forget(self, key_hash: str) -> None:
        """Drop a key deleted elsewhere (another process)."""
        self._keys.pop(key_hash, None)

    def replace(self, record: KeyRecord) -> None:
        """Take a key record changed elsewhere (another process)."""
        key = self._keys.get(record.hash)
        self._unknown.pop(record.hash, None)
        if key is None:
            self._keys[record.hash] = Key(record, Spend(periods=period_starts(self._clock())))
        else:
            key.record = record


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("No auth credentials found")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization header must be 'Bearer <API key>'")
    return token
