"""Sessions live in storage, shared by every process on the database: opened on one, good on another, closed
on one, gone on all; they keep no usable secret (tokens only as hashes, credentials sealed with the token);
they expire, and their expired rows are purged with the playground key of an admin session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crossroads.dashboard.sessions import (
    ADMIN,
    CREDENTIAL,
    PLAYGROUND,
    PLAYGROUND_KEY_NAME,
    Sessions,
    csrf_matches,
    seal,
    unseal,
)
from crossroads.errors import Unauthorized
from crossroads.ledger.keys import KeyRing
from crossroads.storage.base import Store
from crossroads.storage.postgres import PostgresStore
from crossroads.storage.sqlite import SQLiteStore
from tests.storage.test_stores import pg_schema

SECRET = "sk-cr-v1-" + "ab" * 32
ADMIN_KEY = "sessions-test-admin-key"


@dataclass
class Process:
    """What one gateway process holds: its own store connection, key ring and sessions, on a shared database."""

    store: Store
    keys: KeyRing
    sessions: Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
async def processes(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) \
        -> AsyncIterator[tuple[Process, Process]]:
    """Two processes' worth of storage, key ring and sessions over one database (an SQLite file, or one
    PostgreSQL schema)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            stores: list[Store] = [SQLiteStore(tmp_path / "shared.db"), SQLiteStore(tmp_path / "shared.db")]
        else:
            url = await stack.enter_async_context(pg_schema())
            stores = [PostgresStore(url), PostgresStore(url)]
        made = []
        for store in stores:
            await store.open()
            stack.push_async_callback(store.close)
            keys = KeyRing(store, ADMIN_KEY, clock=clock)
            await keys.load()
            made.append(Process(store, keys, Sessions(store, keys, clock=clock, lifetime=60)))
        yield made[0], made[1]


async def test_a_session_opened_on_one_process_is_good_on_another_until_closed_there(
        processes: tuple[Process, Process]) -> None:
    one, two = processes
    session = await one.sessions.open(SECRET, "somehash")
    found = await two.sessions.find(session.token)
    assert found is not None and found.principal == "somehash" and not found.admin
    assert found.credential == SECRET and found.csrf == session.csrf
    assert await two.sessions.find(session.token + "x") is None and await two.sessions.find(None) is None
    closed = await two.sessions.close(session.token)
    assert closed is not None and closed.credential == SECRET
    assert await one.sessions.find(session.token) is None
    assert await one.sessions.close(session.token) is None


async def test_storage_keeps_neither_token_nor_secret_in_clear(processes: tuple[Process, Process]) -> None:
    one, _ = processes
    session = await one.sessions.open(SECRET, ADMIN)
    stored = await one.store.get_session(session.record.token_hash)
    assert stored is not None and session.admin
    row = repr(stored).encode() + stored.sealed
    for value in (session.token, SECRET, session.csrf):
        assert value.encode() not in row
    assert unseal(session.token, stored.sealed) == SECRET
    assert unseal(session.token + "x", stored.sealed) != SECRET


async def test_sessions_expire_and_are_purged_with_their_playground_keys(
        processes: tuple[Process, Process], clock: Clock) -> None:
    one, two = processes
    admin = await one.sessions.open(ADMIN_KEY, ADMIN)
    secret = await one.sessions.playground(admin)
    playground = await one.keys.authenticate(f"Bearer {secret}")
    assert playground.record.name == PLAYGROUND_KEY_NAME and playground.record.expires_at == admin.expires_at
    # The other process finds the same playground key, and makes no second one.
    again = await two.sessions.find(admin.token)
    assert again is not None and await two.sessions.playground(again) == secret
    assert [r.name for r in await one.store.list_keys()] == [PLAYGROUND_KEY_NAME]
    # Sessions last their lifetime, however they are used.
    clock.now += 59
    assert await two.sessions.find(admin.token) is not None
    clock.now += 1
    assert await two.sessions.find(admin.token) is None
    # Presenting the expired session purged it, and its key, which had only expired, is gone too.
    assert await one.store.get_session(admin.record.token_hash) is None
    assert await one.store.list_keys() == []
    # Sessions never presented again are purged at the next sign-in, on any process.
    old = await one.sessions.open(ADMIN_KEY, ADMIN)
    await one.sessions.playground(old)
    plain = await one.sessions.open(SECRET, "somehash")
    clock.now += 30
    await two.sessions.open(SECRET, "somehash")
    assert await one.store.get_session(old.record.token_hash) is not None
    clock.now += 30
    await two.sessions.open(SECRET, "somehash")
    assert await one.store.get_session(old.record.token_hash) is None
    assert await one.store.get_session(plain.record.token_hash) is None
    assert await one.store.list_keys() == []
    assert await one.sessions.purge() == 0


async def test_closing_a_session_deletes_its_playground_key_made_by_another_process(
        processes: tuple[Process, Process]) -> None:
    one, two = processes
    admin = await one.sessions.open(ADMIN_KEY, ADMIN)
    found = await two.sessions.find(admin.token)
    assert found is not None
    await two.sessions.playground(found)
    # The first process has not heard of that key yet (no refresh), and still deletes it.
    assert await one.sessions.close(admin.token) is not None
    assert await one.store.list_keys() == []
    # A playground asked for on a session closed meanwhile is refused, and leaves no key behind.
    with pytest.raises(Unauthorized):
        await two.sessions.playground(found)
    assert await one.store.list_keys() == []


async def test_csrf_tokens_and_seals(processes: tuple[Process, Process]) -> None:
    one, _ = processes
    session = await one.sessions.open(SECRET, ADMIN)
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None) and not csrf_matches(session, session.csrf[:-1] + "?")
    assert seal("t1", SECRET) != seal("t2", SECRET)
    # The credential and the playground key are sealed with different streams.
    assert seal("t1", SECRET, CREDENTIAL) != seal("t1", SECRET, PLAYGROUND)
