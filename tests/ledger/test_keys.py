"""Keys: hashed storage, authentication, limits, reservations and periods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crossroads.errors import Forbidden, PaymentRequired, Unauthorized
from crossroads.ledger.budget import MemoryBudget
from crossroads.ledger.keys import MISS_LOOKUPS_PER_SECOND, KeyRing, hash_secret
from crossroads.storage.base import KeyRecord
from crossroads.storage.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "keys.db")
    await s.open()
    yield s
    await s.close()


async def test_secret_is_stored_only_as_its_hash(store: SQLiteStore, tmp_path: Path) -> None:
    ring = KeyRing(store, None)
    secret, key = await ring.create("team")
    assert secret.startswith("sk-cr-v1-") and len(secret) == 9 + 64
    assert key.hash == hash_secret(secret)
    assert secret not in (tmp_path / "keys.db").read_bytes().decode("latin-1")
    assert key.record.label.endswith(secret[-3:]) and secret not in key.record.label


async def test_authenticate(store: SQLiteStore) -> None:
    ring = KeyRing(store, "admin-key-0123456789")
    secret, key = await ring.create("team")
    assert await ring.authenticate(f"Bearer {secret}") is key
    for bad in (None, "", "Bearer", "Basic abc", f"Bearer {secret}x"):
        with pytest.raises(Unauthorized):
            await ring.authenticate(bad)
    with pytest.raises(Forbidden):  # a management key cannot run inference
        await ring.authenticate("Bearer admin-key-0123456789")


async def test_disabled_deleted_and_expired_keys_stop_at_once(store: SQLiteStore) -> None:
    now = [1000.0]
    ring = KeyRing(store, None, clock=lambda: now[0])
    secret, _ = await ring.create("a", expires_at=1500.0)
    await ring.authenticate(f"Bearer {secret}")
    now[0] = 1501
    with pytest.raises(Unauthorized, match="expired"):
        await ring.authenticate(f"Bearer {secret}")
    secret2, key2 = await ring.create("b")
    await ring.update(key2.hash, {"disabled": True})
    with pytest.raises(Unauthorized, match="disabled"):
        await ring.authenticate(f"Bearer {secret2}")
    secret3, key3 = await ring.create("c")
    await ring.delete(key3.hash)
    with pytest.raises(Unauthorized):
        await ring.authenticate(f"Bearer {secret3}")


async def test_reservations_never_let_a_key_pass_its_limit(store: SQLiteStore) -> None:
    ring = KeyRing(store, None)
    _, key = await ring.create("a", limit_nanos=1000)
    budget = MemoryBudget()
    await budget.reserve(key, 600)
    with pytest.raises(PaymentRequired):
        await budget.reserve(key, 500)  # 600 held + 500 > 1000
    await budget.settle(key, 600, 100)  # the first request cost only 100
    await budget.reserve(key, 900)
    assert await budget.remaining(key) == 0
    await budget.settle(key, 900, 900)
    assert key.spend.total == 1000
    with pytest.raises(PaymentRequired):
        await budget.reserve(key, 1)


async def test_monthly_limit_resets_with_the_month(store: SQLiteStore) -> None:
    now = [1_767_225_600.0 - 10]  # 2025-12-31T23:59:50Z
    ring = KeyRing(store, None, clock=lambda: now[0])
    budget = MemoryBudget(clock=lambda: now[0])
    _, key = await ring.create("a", limit_nanos=1000, limit_reset="monthly")
    await budget.reserve(key, 1000)
    await budget.settle(key, 1000, 1000)
    with pytest.raises(PaymentRequired):
        await budget.reserve(key, 1)
    now[0] += 20  # 2026-01-01
    await budget.reserve(key, 1000)
    assert key.spend.total == 1000 and key.spend.monthly == 0


async def test_refresh_picks_up_changes_made_elsewhere(store: SQLiteStore) -> None:
    here = KeyRing(store, None)
    there = KeyRing(store, None)
    secret, key = await there.create("elsewhere")
    await here.refresh()
    assert (await here.authenticate(f"Bearer {secret}")).hash == key.hash
    await there.update(key.hash, {"disabled": True})
    await here.refresh()
    with pytest.raises(Unauthorized):
        await here.authenticate(f"Bearer {secret}")
    await there.delete(key.hash)
    await here.refresh()
    assert len(here) == 0


async def test_a_key_created_elsewhere_works_at_once_and_unknown_keys_are_looked_up_once(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    here = KeyRing(store, None)
    there = KeyRing(store, None)
    lookups: list[str] = []
    get_key = store.get_key

    async def counted(key_hash: str) -> KeyRecord | None:
        lookups.append(key_hash)
        return await get_key(key_hash)

    monkeypatch.setattr(store, "get_key", counted)
    secret, key = await there.create("elsewhere")  # no refresh, no announcement reached `here`
    assert (await here.authenticate(f"Bearer {secret}")).hash == key.hash
    assert (await here.authenticate(f"Bearer {secret}")).hash == key.hash
    assert lookups == [key.hash]  # known from then on
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await here.authenticate("Bearer sk-cr-v1-made-up")
    assert lookups == [key.hash, hash_secret("sk-cr-v1-made-up")]  # a miss is remembered
    for i in range(MISS_LOOKUPS_PER_SECOND * 2):
        with pytest.raises(Unauthorized):
            await here.authenticate(f"Bearer sk-cr-v1-flood-{i}")
    assert len(lookups) == MISS_LOOKUPS_PER_SECOND  # a flood of made-up keys is capped per second
