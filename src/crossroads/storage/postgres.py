"""PostgreSQL storage, for deployments of several gateway processes: asyncpg with a bounded pool.

The same migrations as SQLite run here; an advisory lock makes concurrent starts of several processes apply
each migration exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import asyncpg

from crossroads.errors import ConfigError
from crossroads.storage.base import (
    FEEDBACK_COLUMNS,
    GENERATION_COLUMNS,
    GUARDRAIL_COLUMNS,
    GUARDRAIL_KEY_COLUMNS,
    KEY_COLUMNS,
    KEY_MUTABLE,
    PRESET_COLUMNS,
    PRESET_VERSION_COLUMNS,
    PRESETS_SELECT,
    SESSION_COLUMNS,
    ActivityRow,
    FeedbackRecord,
    GenerationQuery,
    GenerationRecord,
    GuardrailKeyRecord,
    GuardrailRecord,
    KeyRecord,
    PresetRecord,
    PresetVersionRecord,
    SessionRecord,
    UsageTotals,
    period_starts,
    preset_row,
)
from crossroads.storage.migrate import Migration, apply_migrations

_MIGRATION_LOCK = 0x63726F7373  # "cross": one advisory lock id for the migration step
_KEY_SELECT = f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys"
_GEN_SELECT = f"SELECT {', '.join(GENERATION_COLUMNS)} FROM generations"
_SESSION_SELECT = f"SELECT {', '.join(SESSION_COLUMNS)} FROM dashboard_sessions"
_SESSION_RETURNING = f"RETURNING {', '.join(SESSION_COLUMNS)}"
_GEN_TYPES = {"created_at": "float8", "streamed": "bool", "cancelled": "bool", "usage_estimated": "bool",
              "cost_nanos": "int8", "status": "int4", "latency_ms": "int4", "generation_time_ms": "int4",
              "tokens_prompt": "int4", "tokens_completion": "int4", "tokens_reasoning": "int4",
              "tokens_cached": "int4", "tokens_cache_write": "int4", "num_media_prompt": "int4",
              "num_search_results": "int4"}
#: One statement inserts a whole batch: one array parameter per column, unnested into rows.
_GEN_INSERT = (
    f"INSERT INTO generations ({', '.join(GENERATION_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{_GEN_TYPES.get(c, 'text')}[]" for i, c in enumerate(GENERATION_COLUMNS))
    + ") ON CONFLICT (id) DO NOTHING"
)


def _raising(kind: str) -> str:
    """A WITH clause that raises `kind`'s revision in the statement it prefixes: one statement, so the raise
    and the change commit together (`kind` is one of the fixed names, never input)."""
    return f"WITH raised AS (UPDATE revisions SET version = version + 1 WHERE name = '{kind}')"


class PostgresStore:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min = min_size
        self._max = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "store is not open"
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self._min, max_size=self._max,
                                                   command_timeout=30)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(f"CROSSROADS_DATABASE_URL: cannot connect to PostgreSQL: {exc}") from exc
        await self.migrate()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1 FROM api_keys LIMIT 1")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrate(self, available: Iterable[Migration] | None = None) -> list[int]:
        async with self.pool.acquire() as db:
            await db.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                return await apply_migrations(_Migrating(db), available)
            finally:
                await db.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    # -- keys ----------------------------------------------------------------------------------------------

    async def revisions(self) -> dict[str, int]:
        return {row[0]: int(row[1]) for row in await self.pool.fetch("SELECT name, version FROM revisions")}

    async def insert_key(self, key: KeyRecord) -> None:
        placeholders = ", ".join(f"${i + 1}" for i in range(len(KEY_COLUMNS)))
        await self.pool.execute(f"{_raising('keys')} INSERT INTO api_keys ({', '.join(KEY_COLUMNS)}) "
                                f"VALUES ({placeholders})", *(getattr(key, c) for c in KEY_COLUMNS))

    async def get_key(self, key_hash: str) -> KeyRecord | None:
        row = await self.pool.fetchrow(f"{_KEY_SELECT} WHERE hash = $1", key_hash)
        return KeyRecord(*row) if row else None

    async def list_keys(self, *, include_disabled: bool = True, offset: int = 0,
                        limit: int | None = None) -> list[KeyRecord]:
        where = "" if include_disabled else " WHERE NOT disabled"
        rows = await self.pool.fetch(f"{_KEY_SELECT}{where} ORDER BY created_at, hash LIMIT $1 OFFSET $2",
                                     limit, offset)
        return [KeyRecord(*row) for row in rows]

    async def update_key(self, key_hash: str, changes: dict[str, Any]) -> KeyRecord | None:
        unknown = set(changes) - KEY_MUTABLE
        if unknown:
            raise ValueError(f"not mutable: {sorted(unknown)}")
        changes = {**changes, "updated_at": time.time()}
        sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(changes))
        row = await self.pool.fetchrow(
            f"{_raising('keys')} UPDATE api_keys SET {sets} WHERE hash = $1 RETURNING {', '.join(KEY_COLUMNS)}",
            key_hash, *changes.values())
        return KeyRecord(*row) if row else None

    async def delete_key(self, key_hash: str) -> bool:
        result = await self.pool.execute(f"{_raising('keys')} DELETE FROM api_keys WHERE hash = $1", key_hash)
        return bool(result.endswith(" 1"))

    # -- presets -------------------------------------------------------------------------------------------

    async def save_preset(self, slug: str, system_prompt: str | None, config: str, at: float) \
            -> tuple[PresetRecord, PresetVersionRecord]:
        version_id = str(uuid.uuid4())
        async with self.pool.acquire() as db, db.transaction():
            # The upsert locks the preset's row until the transaction ends: concurrent saves take turns, so
            # each gets the next version number.
            preset_id = await db.fetchval(
                "INSERT INTO presets (id, slug, name, created_at, updated_at) VALUES ($1, $2, $2, $3, $3) "
                "ON CONFLICT (slug) DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id",
                str(uuid.uuid4()), slug, at)
            number = await db.fetchval(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM preset_versions WHERE preset_id = $1", preset_id)
            version = PresetVersionRecord(version_id, preset_id, number, system_prompt, config, at)
            await db.execute(
                f"INSERT INTO preset_versions ({', '.join(PRESET_VERSION_COLUMNS)}) "
                f"VALUES ({', '.join(f'${i + 1}' for i in range(len(PRESET_VERSION_COLUMNS)))})",
                *(getattr(version, c) for c in PRESET_VERSION_COLUMNS))
            row = await db.fetchrow(
                f"{_raising('presets')} UPDATE presets SET designated_version_id = $1, updated_at = $2 WHERE id = $3 "
                f"RETURNING {', '.join(PRESET_COLUMNS)}", version_id, at, preset_id)
        return PresetRecord(*row), version

    async def list_presets(self) -> list[tuple[PresetRecord, PresetVersionRecord | None]]:
        return [preset_row(row) for row in await self.pool.fetch(PRESETS_SELECT)]

    async def list_preset_versions(self, preset_id: str) -> list[PresetVersionRecord]:
        rows = await self.pool.fetch(
            f"SELECT {', '.join(PRESET_VERSION_COLUMNS)} FROM preset_versions WHERE preset_id = $1 ORDER BY version",
            preset_id)
        return [PresetVersionRecord(*row) for row in rows]

    # -- guardrails ----------------------------------------------------------------------------------------

    async def save_guardrail(self, guardrail: GuardrailRecord) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in GUARDRAIL_COLUMNS if c not in ("id", "created_at"))
        await self.pool.execute(
            f"{_raising('guardrails')} INSERT INTO guardrails ({', '.join(GUARDRAIL_COLUMNS)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(GUARDRAIL_COLUMNS)))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}", *(getattr(guardrail, c) for c in GUARDRAIL_COLUMNS))

    async def delete_guardrail(self, guardrail_id: str) -> bool:
        async with self.pool.acquire() as db, db.transaction():
            await db.execute("DELETE FROM guardrail_keys WHERE guardrail_id = $1", guardrail_id)
            result = await db.execute(f"{_raising('guardrails')} DELETE FROM guardrails WHERE id = $1", guardrail_id)
        return bool(result.endswith(" 1"))

    async def list_guardrails(self) -> list[GuardrailRecord]:
        rows = await self.pool.fetch(f"SELECT {', '.join(GUARDRAIL_COLUMNS)} FROM guardrails ORDER BY created_at, id")
        return [GuardrailRecord(*row) for row in rows]

    async def assign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str], at: float) -> int:
        result = await self.pool.execute(
            f"{_raising('guardrails')} INSERT INTO guardrail_keys ({', '.join(GUARDRAIL_KEY_COLUMNS)}) "
            "SELECT gen_random_uuid()::text, $1, h, $3 FROM unnest($2::text[]) AS h "
            "ON CONFLICT (guardrail_id, key_hash) DO NOTHING", guardrail_id, key_hashes, at)
        return int(result.rsplit(" ", 1)[-1])

    async def unassign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str]) -> int:
        result = await self.pool.execute(
            f"{_raising('guardrails')} DELETE FROM guardrail_keys WHERE guardrail_id = $1 "
            "AND key_hash = ANY($2::text[])",
            guardrail_id, key_hashes)
        return int(result.rsplit(" ", 1)[-1])

    async def list_guardrail_keys(self) -> list[GuardrailKeyRecord]:
        rows = await self.pool.fetch(
            f"SELECT {', '.join(GUARDRAIL_KEY_COLUMNS)} FROM guardrail_keys ORDER BY assigned_at, id")
        return [GuardrailKeyRecord(*row) for row in rows]

    # -- ledger --------------------------------------------------------------------------------------------

    async def write_generations(self, records: list[GenerationRecord]) -> int:
        columns = [[getattr(r, c) for r in records] for c in GENERATION_COLUMNS]
        result = await self.pool.execute(_GEN_INSERT, *columns)
        return int(result.rsplit(" ", 1)[-1])

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        row = await self.pool.fetchrow(f"{_GEN_SELECT} WHERE id = $1", generation_id)
        return GenerationRecord(*row) if row else None

    async def purge_content(self, before: float) -> int:
        result = await self.pool.execute(
            "UPDATE generations SET content = NULL WHERE content IS NOT NULL AND created_at < $1", before)
        return int(result.rsplit(" ", 1)[-1])

    async def add_feedback(self, feedback: FeedbackRecord) -> None:
        await self.pool.execute(
            f"INSERT INTO generation_feedback ({', '.join(FEEDBACK_COLUMNS)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(FEEDBACK_COLUMNS)))})",
            *(getattr(feedback, c) for c in FEEDBACK_COLUMNS))

    async def usage_totals(self, key_hashes: list[str], now: float) -> dict[str, UsageTotals]:
        if not key_hashes:
            return {}
        day, week, month = period_starts(now)
        rows = await self.pool.fetch(
            "SELECT key_hash, SUM(cost_nanos), "
            "SUM(CASE WHEN created_at >= $1 THEN cost_nanos ELSE 0 END), "
            "SUM(CASE WHEN created_at >= $2 THEN cost_nanos ELSE 0 END), "
            "SUM(CASE WHEN created_at >= $3 THEN cost_nanos ELSE 0 END) "
            "FROM generations WHERE key_hash = ANY($4::text[]) GROUP BY key_hash",
            day, week, month, key_hashes)
        return {r[0]: UsageTotals(int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows}

    async def recent_generations(self, query: GenerationQuery) -> list[GenerationRecord]:
        where, args = query.conditions(lambda n: f"${n}")
        sql = f"{_GEN_SELECT}{where} ORDER BY created_at DESC, id LIMIT ${len(args) + 1}"
        return [GenerationRecord(*row) for row in await self.pool.fetch(sql, *args, query.limit)]

    async def activity(self, since: float, until: float, key_hash: str | None = None,
                       hourly: bool = False) -> list[ActivityRow]:
        form = "YYYY-MM-DD\"T\"HH24:00" if hourly else "YYYY-MM-DD"
        sql = (
            f"SELECT to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', '{form}'), model, provider_name, "
            "COALESCE(app_title, http_referer), key_hash, COUNT(*), SUM(tokens_prompt), SUM(tokens_completion), "
            "SUM(COALESCE(tokens_reasoning, 0)), SUM(cost_nanos), "
            "SUM((SELECT COUNT(*) FROM generation_feedback f WHERE f.generation_id = generations.id)) FROM generations "
            "WHERE created_at >= $1 AND created_at < $2"
            + (" AND key_hash = $3" if key_hash else "")
            + " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3"
        )
        args: tuple[Any, ...] = (since, until, key_hash) if key_hash else (since, until)
        rows = await self.pool.fetch(sql, *args)
        return [ActivityRow(*row[:5], *(int(v or 0) for v in row[5:])) for row in rows]

    # -- dashboard sessions --------------------------------------------------------------------------------

    async def insert_session(self, session: SessionRecord) -> None:
        placeholders = ", ".join(f"${i + 1}" for i in range(len(SESSION_COLUMNS)))
        await self.pool.execute(
            f"INSERT INTO dashboard_sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({placeholders})",
            *(getattr(session, c) for c in SESSION_COLUMNS))

    async def get_session(self, token_hash: str) -> SessionRecord | None:
        row = await self.pool.fetchrow(f"{_SESSION_SELECT} WHERE token_hash = $1", token_hash)
        return SessionRecord(*row) if row else None

    async def attach_playground(self, token_hash: str, sealed: bytes, key_hash: str) -> bool:
        result = await self.pool.execute(
            "UPDATE dashboard_sessions SET playground = $2, playground_hash = $3 "
            "WHERE token_hash = $1 AND playground_hash IS NULL", token_hash, sealed, key_hash)
        return bool(result.endswith(" 1"))

    async def delete_session(self, token_hash: str) -> SessionRecord | None:
        row = await self.pool.fetchrow(
            f"DELETE FROM dashboard_sessions WHERE token_hash = $1 {_SESSION_RETURNING}", token_hash)
        return SessionRecord(*row) if row else None

    async def purge_sessions(self, now: float) -> list[SessionRecord]:
        rows = await self.pool.fetch(f"DELETE FROM dashboard_sessions WHERE expires_at <= $1 {_SESSION_RETURNING}",
                                     now)
        return [SessionRecord(*row) for row in rows]

    # -- credits -------------------------------------------------------------------------------------------

    async def grant_credits(self, grant_id: str, amount_nanos: int, note: str | None, at: float) -> None:
        await self.pool.execute(
            "INSERT INTO credit_grants VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            grant_id, amount_nanos, note, at)

    async def credit_totals(self) -> tuple[int, int]:
        row = await self.pool.fetchrow(
            "SELECT (SELECT COALESCE(SUM(amount_nanos), 0) FROM credit_grants), "
            "(SELECT COALESCE(SUM(cost_nanos), 0) FROM generations)")
        assert row is not None
        return int(row[0]), int(row[1])


class _Migrating:
    """An asyncpg connection as the migration runner uses it."""

    paramstyle: Literal["qmark", "numeric"] = "numeric"

    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> None:
        await self._db.execute(sql, *args)

    async def column(self, sql: str) -> list[Any]:
        return [row[0] for row in await self._db.fetch(sql)]

    def transaction(self) -> AbstractAsyncContextManager[object]:
        transaction: AbstractAsyncContextManager[object] = self._db.transaction()
        return transaction
