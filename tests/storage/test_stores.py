"""The same storage behaviour on SQLite and PostgreSQL: migrations, keys, idempotent ledger writes, totals."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crossroads.storage.base import (
    FeedbackRecord,
    GenerationQuery,
    GenerationRecord,
    GuardrailRecord,
    KeyRecord,
    SessionRecord,
    Store,
    period_starts,
)
from crossroads.storage.migrate import migrations
from crossroads.storage.postgres import PostgresStore
from crossroads.storage.sqlite import SQLiteStore

PG_ROOT = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "store.db")
        await s.open()
        try:
            yield s
        finally:
            await s.close()
        return
    async with pg_schema() as url:
        s = PostgresStore(url)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A scratch schema in the `test` database (a DSN selecting it), dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ROOT)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_ROOT}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def generation(key_hash: str, cost: int, at: float, gid: str | None = None) -> GenerationRecord:
    return GenerationRecord(id=gid or f"gen-{uuid.uuid4().hex}", key_hash=key_hash, created_at=at, model="a/b",
                            streamed=False, status=200, tokens_prompt=10, tokens_completion=5, cost_nanos=cost,
                            trace='[{"provider": "X"}]', operation="embeddings", web_search_engine="exa",
                            num_search_results=5)


async def test_migrations_are_applied_once(store: Store) -> None:
    assert await store.migrate() == []  # open() already applied them
    assert [v for v, _, _ in migrations()] == sorted({v for v, _, _ in migrations()})


async def test_key_round_trip(store: Store) -> None:
    record = KeyRecord(hash="h1", name="n", label="sk-...", created_at=time.time(), limit_nanos=5, limit_reset="daily")
    await store.insert_key(record)
    assert await store.get_key("h1") == record
    updated = await store.update_key("h1", {"disabled": True, "name": "m"})
    assert updated is not None and updated.disabled is True and updated.name == "m" and updated.updated_at
    assert updated.response_cache is False
    cached = await store.update_key("h1", {"response_cache": True})
    assert cached is not None and cached.response_cache is True and await store.get_key("h1") == cached
    assert [k.hash for k in await store.list_keys(include_disabled=False)] == []
    assert [k.hash for k in await store.list_keys()] == ["h1"]
    assert await store.delete_key("h1") is True
    assert await store.delete_key("h1") is False
    assert await store.get_key("h1") is None


async def test_session_round_trip(store: Store) -> None:
    now = time.time()
    live = SessionRecord("t1", "admin", b"\x00sealed\xff", now, now + 60)
    expired = SessionRecord("t2", "keyhash", b"other", now - 120, now - 60)
    for record in (live, expired):
        await store.insert_session(record)
    assert await store.get_session("t1") == live and await store.get_session("t3") is None
    # A session gets one playground key: the second attempt (another process's) is refused.
    assert await store.attach_playground("t1", b"pg", "pghash") is True
    assert await store.attach_playground("t1", b"pg2", "pghash2") is False
    assert await store.attach_playground("t3", b"pg", "pghash") is False
    with_key = SessionRecord("t1", "admin", b"\x00sealed\xff", now, now + 60, b"pg", "pghash")
    assert await store.get_session("t1") == with_key
    # Purging returns the expired rows, each to one caller.
    await store.attach_playground("t2", b"old", "oldhash")
    purged = await store.purge_sessions(now)
    assert [(r.token_hash, r.playground_hash) for r in purged] == [("t2", "oldhash")]
    assert await store.purge_sessions(now) == [] and await store.get_session("t2") is None
    assert await store.delete_session("t1") == with_key
    assert await store.delete_session("t1") is None and await store.get_session("t1") is None


async def test_ledger_writes_are_idempotent(store: Store) -> None:
    now = time.time()
    first = generation("k", 100, now, "gen-1")
    assert await store.write_generations([first, generation("k", 50, now, "gen-2")]) == 2
    assert await store.write_generations([first, generation("k", 25, now, "gen-3")]) == 1  # gen-1 again: skipped
    totals = await store.usage_totals(["k", "other"], now)
    assert totals["k"].total == 175 and "other" not in totals
    got = await store.get_generation("gen-1")
    assert got == first


async def test_usage_totals_by_period(store: Store) -> None:
    now = 1_767_312_000.0  # 2026-01-02T00:00:00Z, a Friday
    day, week, month = period_starts(now)
    await store.write_generations([
        generation("k", 1, now - 10),  # yesterday (Jan 1): this week, this month
        generation("k", 10, day + 5),  # today
        generation("k", 100, month - 5),  # last month (Dec 31), but this week (from Monday Dec 29)
        generation("k", 1000, week - 5),  # last week
    ])
    totals = (await store.usage_totals(["k"], now + 60))["k"]
    assert (totals.total, totals.daily, totals.weekly, totals.monthly) == (1111, 10, 111, 11)


async def test_credits(store: Store) -> None:
    await store.grant_credits("g1", 5_000_000_000, "first", time.time())
    await store.grant_credits("g1", 5_000_000_000, "first", time.time())  # same grant id: once
    await store.write_generations([generation("k", 250, time.time())])
    assert await store.credit_totals() == (5_000_000_000, 250)


async def test_activity_groups_by_day_model_and_app(store: Store) -> None:
    now = time.time()
    records = [generation("k", 10, now), generation("k", 20, now)]
    records[0].app_title = "App"
    await store.write_generations(records)
    rows = await store.activity(now - 60, now + 60)
    assert sum(r.requests for r in rows) == 2 and sum(r.cost_nanos for r in rows) == 30


async def test_ping_answers_while_the_database_does_and_raises_once_it_is_gone(store: Store) -> None:
    await store.ping()
    if isinstance(store, SQLiteStore):
        store.path.rename(store.path.with_suffix(".away"))
    else:
        assert isinstance(store, PostgresStore)
        await store.pool.execute("DROP TABLE api_keys CASCADE")  # what a wiped database looks like to a query
    with pytest.raises(Exception):  # noqa: B017, PT011 - each driver raises its own
        await store.ping()


async def test_presets_version_on_every_save(store: Store) -> None:
    first, v1 = await store.save_preset("tone", "Be brief.", '{"model": "openai/gpt-4o"}', 100.0)
    second, v2 = await store.save_preset("tone", None, '{"temperature": 0.2}', 200.0)
    other, _ = await store.save_preset("other", None, "{}", 150.0)
    assert first.id == second.id != other.id
    assert (v1.version, v2.version) == (1, 2) and v2.preset_id == first.id
    assert second.designated_version_id == v2.id and second.updated_at == 200.0 and second.created_at == 100.0
    listed = await store.list_presets()
    assert [(p.slug, v.version if v else None) for p, v in listed] == [("tone", 2), ("other", 1)]
    assert listed[0][1] == v2
    versions = await store.list_preset_versions(first.id)
    assert [(v.version, v.system_prompt, v.config) for v in versions] == [
        (1, "Be brief.", '{"model": "openai/gpt-4o"}'), (2, None, '{"temperature": 0.2}')]


async def test_concurrent_preset_saves_get_consecutive_versions(store: Store) -> None:
    saved = await asyncio.gather(*(store.save_preset("busy", None, "{}", float(i)) for i in range(8)))
    assert sorted(v.version for _, v in saved) == list(range(1, 9))


async def test_guardrails_and_their_key_assignments(store: Store) -> None:
    rail = GuardrailRecord("g1", "Team A", None, '{"allowed_models": ["a/b"]}', 10.0)
    await store.save_guardrail(rail)
    await store.save_guardrail(GuardrailRecord("g2", "Team B", "desc", "{}", 20.0))
    changed = GuardrailRecord("g1", "Team A2", "now described", '{"limit_usd": 5}', 99.0, 30.0)
    await store.save_guardrail(changed)
    listed = await store.list_guardrails()
    assert [g.id for g in listed] == ["g1", "g2"]
    assert listed[0] == GuardrailRecord("g1", "Team A2", "now described", '{"limit_usd": 5}', 10.0, 30.0)
    assert await store.assign_guardrail_keys("g1", ["k1", "k2"], 40.0) == 2
    assert await store.assign_guardrail_keys("g1", ["k2", "k3"], 41.0) == 1  # k2 already assigned
    assert await store.assign_guardrail_keys("g2", ["k1"], 42.0) == 1
    assert await store.unassign_guardrail_keys("g1", ["k1", "nobody"]) == 1
    assignments = await store.list_guardrail_keys()
    assert [(a.guardrail_id, a.key_hash, a.assigned_at) for a in assignments] == [
        ("g1", "k2", 40.0), ("g1", "k3", 41.0), ("g2", "k1", 42.0)]
    assert await store.delete_guardrail("g1") and not await store.delete_guardrail("g1")
    assert [(a.guardrail_id, a.key_hash) for a in await store.list_guardrail_keys()] == [("g2", "k1")]


async def test_every_change_to_held_records_raises_its_kinds_revision_and_nothing_else_does(store: Store) -> None:
    async def moved() -> set[str]:
        before, after = revisions[0], await store.revisions()
        revisions[0] = after
        return {kind for kind in after if after[kind] != before.get(kind)}

    revisions = [await store.revisions()]
    assert set(revisions[0]) == {"keys", "presets", "guardrails"}
    await store.insert_key(KeyRecord(hash="h1", name="n", label="sk-...", created_at=time.time()))
    assert await moved() == {"keys"}
    await store.update_key("h1", {"disabled": True})
    assert await moved() == {"keys"}
    await store.write_generations([generation("h1", 5, time.time())])
    await store.list_keys()
    assert await moved() == set()
    assert await store.delete_key("h1")
    assert await moved() == {"keys"}
    await store.save_preset("tone", None, "{}", 1.0)
    assert await moved() == {"presets"}
    await store.save_guardrail(GuardrailRecord("g1", "Team A", None, "{}", 10.0))
    assert await moved() == {"guardrails"}
    await store.assign_guardrail_keys("g1", ["k1"], 11.0)
    assert await moved() == {"guardrails"}
    await store.unassign_guardrail_keys("g1", ["k1"])
    assert await moved() == {"guardrails"}
    assert await store.delete_guardrail("g1")
    assert await moved() == {"guardrails"}


async def test_a_failed_change_raises_no_revision(store: Store) -> None:
    record = KeyRecord(hash="h1", name="n", label="sk-...", created_at=time.time())
    await store.insert_key(record)
    before = await store.revisions()
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):  # the same hash twice
        await store.insert_key(record)
    assert await store.revisions() == before


async def test_content_is_purged_after_its_retention_and_feedback_counts_in_activity(store: Store) -> None:
    now = time.time()
    old, new, bare = generation("k", 1, now - 86400 * 40), generation("k", 1, now), generation("k", 1, now)
    old.content = new.content = '{"input": {"messages": []}, "output": {"completion": "x", "reasoning": null}}'
    await store.write_generations([old, new, bare])
    assert await store.purge_content(now - 86400 * 30) == 1
    assert (await store.get_generation(old.id)).content is None  # type: ignore[union-attr]
    assert (await store.get_generation(new.id)).content == new.content  # type: ignore[union-attr]
    for i in range(2):
        await store.add_feedback(FeedbackRecord(f"f{i}", new.id, "k", "latency", None, now))
    rows = await store.activity(now - 60, now + 60)
    assert sum(r.feedback for r in rows) == 2 and sum(r.requests for r in rows) == 2


async def test_recent_generations_newest_first_and_filtered(store: Store) -> None:
    now = time.time()
    records = [generation("k1", 10, now - 30, "gen-a"), generation("k1", 20, now - 20, "gen-b"),
               generation("k2", 30, now - 10, "gen-c")]
    records[1].status, records[1].app_title, records[1].provider_name = 502, "App", "P"
    await store.write_generations(records)

    async def ids(**fields: Any) -> list[str]:
        return [r.id for r in await store.recent_generations(GenerationQuery(**fields))]

    assert await ids() == ["gen-c", "gen-b", "gen-a"]
    assert await ids(limit=1) == ["gen-c"]
    assert await ids(key_hash="k1") == ["gen-b", "gen-a"]
    assert await ids(failed=True) == ["gen-b"] and await ids(failed=False) == ["gen-c", "gen-a"]
    assert await ids(app="App", provider_name="P", model="a/b") == ["gen-b"]
    assert await ids(model="x/y") == []
    assert await ids(before=now - 15) == ["gen-b", "gen-a"]
    (record,) = await store.recent_generations(GenerationQuery(app="App"))
    assert record.streamed is False and record.status == 502


async def test_activity_by_hour(store: Store) -> None:
    now = time.time()
    await store.write_generations([generation("k", 10, now - 3600), generation("k", 20, now)])
    rows = await store.activity(now - 7200, now + 60, hourly=True)
    assert len({r.date for r in rows}) == 2 and all(len(r.date) == 16 and r.date[10] == "T" for r in rows)
