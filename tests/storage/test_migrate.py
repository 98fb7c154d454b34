"""The one migration runner, on both backends: pending migrations applied once each, their statements split
correctly, and a failing migration rolled back whole."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crossroads.storage.base import Store
from crossroads.storage.migrate import migrations
from crossroads.storage.postgres import PostgresStore
from crossroads.storage.sqlite import SQLiteStore
from tests.storage.test_stores import pg_schema

Query = Callable[[str], Awaitable[list[tuple[Any, ...]]]]

LITERALS = (1001, "literals", "CREATE TABLE odd (x TEXT DEFAULT 'a -- b; c', \"odd;--name\" TEXT); -- a table\n"
                              "INSERT INTO odd (\"odd;--name\") VALUES ('it''s'); /* and; a row */\n")
FAILING = (1002, "failing", "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n")


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Store, Query]]:
    """An open store (its own migrations applied) and a way to query its database from outside."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        async def query_sqlite(sql: str) -> list[tuple[Any, ...]]:
            with contextlib.closing(sqlite3.connect(path)) as db:
                return db.execute(sql).fetchall()

        store: Store = SQLiteStore(path)
        await store.open()
        try:
            yield store, query_sqlite
        finally:
            await store.close()
        return
    async with pg_schema() as url:

        async def query_postgres(sql: str) -> list[tuple[Any, ...]]:
            db = await asyncpg.connect(url)
            try:
                return [tuple(row) for row in await db.fetch(sql)]
            finally:
                await db.close()

        store = PostgresStore(url)
        await store.open()
        try:
            yield store, query_postgres
        finally:
            await store.close()


async def test_pending_migrations_apply_once_and_are_recorded(backend: tuple[Store, Query]) -> None:
    store, query = backend
    shipped = [version for version, _, _ in migrations()]
    assert [row[0] for row in await query("SELECT version FROM schema_migrations ORDER BY version")] == shipped
    assert await store.migrate([*migrations(), LITERALS]) == [1001]
    assert await store.migrate([*migrations(), LITERALS]) == []
    assert await query('SELECT x, "odd;--name" FROM odd') == [("a -- b; c", "it's")]
    assert await query("SELECT name FROM schema_migrations WHERE version = 1001") == [("literals",)]


async def test_a_failing_migration_leaves_nothing_behind(backend: tuple[Store, Query]) -> None:
    store, query = backend
    with pytest.raises((sqlite3.Error, asyncpg.PostgresError)):
        await store.migrate([FAILING])
    assert await query("SELECT version FROM schema_migrations WHERE version = 1002") == []
    with pytest.raises((sqlite3.Error, asyncpg.PostgresError)):
        await query("SELECT x FROM half")
    assert await store.migrate([LITERALS]) == [1001]  # the store is still usable


async def test_dollar_quoted_bodies_reach_postgres_whole() -> None:
    body = ("CREATE FUNCTION answer() RETURNS text LANGUAGE sql AS $body$ SELECT 'a; -- b'::text $body$;\n"
            "CREATE TABLE answers (x TEXT DEFAULT answer());\nINSERT INTO answers DEFAULT VALUES;\n")
    async with pg_schema() as url:
        store = PostgresStore(url)
        await store.open()
        try:
            assert await store.migrate([(1003, "function", body)]) == [1003]
            async with store.pool.acquire() as db:
                assert await db.fetchval("SELECT x FROM answers") == "a; -- b"
        finally:
            await store.close()
