"""SQLite storage: the embedded default. One file in WAL mode, one connection owned by one worker thread, so
the event loop never blocks on disk and statements never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

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

T = TypeVar("T")

_KEY_SELECT = f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys"
_GEN_SELECT = f"SELECT {', '.join(GENERATION_COLUMNS)} FROM generations"
_GEN_INSERT = (
    f"INSERT INTO generations ({', '.join(GENERATION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in GENERATION_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
_PRESET_SELECT = f"SELECT {', '.join(PRESET_COLUMNS)} FROM presets"
_VERSION_SELECT = f"SELECT {', '.join(PRESET_VERSION_COLUMNS)} FROM preset_versions"
_SESSION_SELECT = f"SELECT {', '.join(SESSION_COLUMNS)} FROM dashboard_sessions"
_SESSION_RETURNING = f"RETURNING {', '.join(SESSION_COLUMNS)}"
_BOOL_KEY_FIELDS = ("disabled", "include_byok_in_limit", "is_management", "response_cache")
_BOOL_GEN_FIELDS = ("streamed", "cancelled", "usage_estimated")


def _changing(kind: str, change: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """`change` in one transaction with the raise of `kind`'s revision. IMMEDIATE takes the write lock first,
    so concurrent changes from several processes take turns instead of failing to upgrade a read lock."""
    def run(db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            out = change(db)
            db.execute("UPDATE revisions SET version = version + 1 WHERE name = ?", (kind,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    return run


def path_from_url(url: str) -> Path:
    """`sqlite:///crossroads.db` → `crossroads.db` (relative); `sqlite:////var/lib/x.db` → absolute."""
    rest = url[len("sqlite:///"):]
    if not rest:
        raise ConfigError("CROSSROADS_DATABASE_URL: the sqlite URL names no file")
    return Path(rest)


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossroads-sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "store is not open"
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise ConfigError(f"CROSSROADS_DATABASE_URL: cannot open {self.path}: {exc}") from exc
        await self.migrate()

    async def ping(self) -> None:
        # An open connection keeps answering from a file deleted under it: the file must still be there.
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path} is gone")
        await self._run(lambda db: db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchall())

    async def close(self) -> None:
        if self._db is not None:
            await self._run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    async def migrate(self, available: Iterable[Migration] | None = None) -> list[int]:
        return await apply_migrations(_Migrating(self._run), available)

    # -- keys ----------------------------------------------------------------------------------------------

    async def revisions(self) -> dict[str, int]:
        rows = await self._run(lambda db: db.execute("SELECT name, version FROM revisions").fetchall())
        return {name: int(version) for name, version in rows}

    async def insert_key(self, key: KeyRecord) -> None:
        values = tuple(getattr(key, c) for c in KEY_COLUMNS)
        sql = f"INSERT INTO api_keys ({', '.join(KEY_COLUMNS)}) VALUES ({', '.join('?' for _ in KEY_COLUMNS)})"
        await self._run(_changing("keys", lambda db: db.execute(sql, values)))

    async def get_key(self, key_hash: str) -> KeyRecord | None:
        rows = await self._run(lambda db: db.execute(f"{_KEY_SELECT} WHERE hash = ?", (key_hash,)).fetchall())
        return _key(rows[0]) if rows else None

    async def list_keys(self, *, include_disabled: bool = True, offset: int = 0,
                        limit: int | None = None) -> list[KeyRecord]:
        where = "" if include_disabled else " WHERE disabled = 0"
        sql = f"{_KEY_SELECT}{where} ORDER BY created_at, hash LIMIT ? OFFSET ?"
        rows = await self._run(lambda db: db.execute(sql, (-1 if limit is None else limit, offset)).fetchall())
        return [_key(row) for row in rows]

    async def update_key(self, key_hash: str, changes: dict[str, Any]) -> KeyRecord | None:
        unknown = set(changes) - KEY_MUTABLE
        if unknown:
            raise ValueError(f"not mutable: {sorted(unknown)}")
        changes = {**changes, "updated_at": time.time()}
        sets = ", ".join(f"{name} = ?" for name in changes)

        def update(db: sqlite3.Connection) -> Any:
            db.execute(f"UPDATE api_keys SET {sets} WHERE hash = ?", (*changes.values(), key_hash))
            return db.execute(f"{_KEY_SELECT} WHERE hash = ?", (key_hash,)).fetchall()

        rows = await self._run(_changing("keys", update))
        return _key(rows[0]) if rows else None

    async def delete_key(self, key_hash: str) -> bool:
        cursor = await self._run(_changing("keys", lambda db: db.execute("DELETE FROM api_keys WHERE hash = ?",
                                                                          (key_hash,))))
        return bool(cursor.rowcount)

    # -- presets -------------------------------------------------------------------------------------------

    async def save_preset(self, slug: str, system_prompt: str | None, config: str, at: float) \
            -> tuple[PresetRecord, PresetVersionRecord]:
        version_id = str(uuid.uuid4())

        def save(db: sqlite3.Connection) -> tuple[PresetRecord, PresetVersionRecord]:
            # In `_changing`'s IMMEDIATE transaction: two processes saving the same preset take turns.
            db.execute(
                "INSERT INTO presets (id, slug, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (slug) DO NOTHING", (str(uuid.uuid4()), slug, slug, at, at))
            preset_id = db.execute("SELECT id FROM presets WHERE slug = ?", (slug,)).fetchone()[0]
            number = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM preset_versions WHERE preset_id = ?",
                                (preset_id,)).fetchone()[0]
            version = PresetVersionRecord(version_id, preset_id, number, system_prompt, config, at)
            db.execute(f"INSERT INTO preset_versions ({', '.join(PRESET_VERSION_COLUMNS)}) "
                       f"VALUES ({', '.join('?' for _ in PRESET_VERSION_COLUMNS)})",
                       tuple(getattr(version, c) for c in PRESET_VERSION_COLUMNS))
            db.execute("UPDATE presets SET designated_version_id = ?, updated_at = ? WHERE id = ?",
                       (version_id, at, preset_id))
            row = db.execute(f"{_PRESET_SELECT} WHERE id = ?", (preset_id,)).fetchone()
            return PresetRecord(*row), version

        return await self._run(_changing("presets", save))

    async def list_presets(self) -> list[tuple[PresetRecord, PresetVersionRecord | None]]:
        rows = await self._run(lambda db: db.execute(PRESETS_SELECT).fetchall())
        return [preset_row(row) for row in rows]

    async def list_preset_versions(self, preset_id: str) -> list[PresetVersionRecord]:
        sql = f"{_VERSION_SELECT} WHERE preset_id = ? ORDER BY version"
        rows = await self._run(lambda db: db.execute(sql, (preset_id,)).fetchall())
        return [PresetVersionRecord(*row) for row in rows]

    # -- guardrails ----------------------------------------------------------------------------------------

    async def save_guardrail(self, guardrail: GuardrailRecord) -> None:
        values = tuple(getattr(guardrail, c) for c in GUARDRAIL_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in GUARDRAIL_COLUMNS if c not in ("id", "created_at"))
        sql = (f"INSERT INTO guardrails ({', '.join(GUARDRAIL_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in GUARDRAIL_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET {updates}")
        await self._run(_changing("guardrails", lambda db: db.execute(sql, values)))

    async def delete_guardrail(self, guardrail_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM guardrail_keys WHERE guardrail_id = ?", (guardrail_id,))
            return bool(db.execute("DELETE FROM guardrails WHERE id = ?", (guardrail_id,)).rowcount)

        return await self._run(_changing("guardrails", delete))

    async def list_guardrails(self) -> list[GuardrailRecord]:
        sql = f"SELECT {', '.join(GUARDRAIL_COLUMNS)} FROM guardrails ORDER BY created_at, id"
        return [GuardrailRecord(*row) for row in await self._run(lambda db: db.execute(sql).fetchall())]

    async def assign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str], at: float) -> int:
        rows = [(str(uuid.uuid4()), guardrail_id, key_hash, at) for key_hash in key_hashes]

        def assign(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.executemany(f"INSERT INTO guardrail_keys ({', '.join(GUARDRAIL_KEY_COLUMNS)}) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (guardrail_id, key_hash) DO NOTHING", rows)
            return db.total_changes - before

        return await self._run(_changing("guardrails", assign))

    async def unassign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str]) -> int:
        sql = (f"DELETE FROM guardrail_keys WHERE guardrail_id = ? "
               f"AND key_hash IN ({', '.join('?' for _ in key_hashes)})")
        cursor = await self._run(_changing("guardrails", lambda db: db.execute(sql, (guardrail_id, *key_hashes))))
        return int(cursor.rowcount)

    async def list_guardrail_keys(self) -> list[GuardrailKeyRecord]:
        sql = f"SELECT {', '.join(GUARDRAIL_KEY_COLUMNS)} FROM guardrail_keys ORDER BY assigned_at, id"
        return [GuardrailKeyRecord(*row) for row in await self._run(lambda db: db.execute(sql).fetchall())]

    # -- ledger --------------------------------------------------------------------------------------------

    async def write_generations(self, records: list[GenerationRecord]) -> int:
        rows = [tuple(getattr(r, c) for c in GENERATION_COLUMNS) for r in records]

        def write(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.execute("BEGIN")
            try:
                db.executemany(_GEN_INSERT, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return db.total_changes - before

        return await self._run(write)

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        rows = await self._run(
            lambda db: db.execute(f"{_GEN_SELECT} WHERE id = ?", (generation_id,)).fetchall())
        if not rows:
            return None
        return _generation(rows[0])

    async def purge_content(self, before: float) -> int:
        sql = "UPDATE generations SET content = NULL WHERE content IS NOT NULL AND created_at < ?"
        cursor = await self._run(lambda db: db.execute(sql, (before,)))
        return int(cursor.rowcount)

    async def add_feedback(self, feedback: FeedbackRecord) -> None:
        sql = (f"INSERT INTO generation_feedback ({', '.join(FEEDBACK_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in FEEDBACK_COLUMNS)})")
        await self._run(lambda db: db.execute(sql, tuple(getattr(feedback, c) for c in FEEDBACK_COLUMNS)))

    async def usage_totals(self, key_hashes: list[str], now: float) -> dict[str, UsageTotals]:
        day, week, month = period_starts(now)
        sql = (
            "SELECT key_hash, SUM(cost_nanos), "
            "SUM(CASE WHEN created_at >= ? THEN cost_nanos ELSE 0 END), "
            "SUM(CASE WHEN created_at >= ? THEN cost_nanos ELSE 0 END), "
            "SUM(CASE WHEN created_at >= ? THEN cost_nanos ELSE 0 END) "
            f"FROM generations WHERE key_hash IN ({', '.join('?' for _ in key_hashes)}) GROUP BY key_hash"
        )
        if not key_hashes:
            return {}
        rows = await self._run(lambda db: db.execute(sql, (day, week, month, *key_hashes)).fetchall())
        return {row[0]: UsageTotals(int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))
                for row in rows}

    async def recent_generations(self, query: GenerationQuery) -> list[GenerationRecord]:
        where, args = query.conditions(lambda _: "?")
        sql = f"{_GEN_SELECT}{where} ORDER BY created_at DESC, id LIMIT ?"
        rows = await self._run(lambda db: db.execute(sql, (*args, query.limit)).fetchall())
        return [_generation(row) for row in rows]

    async def activity(self, since: float, until: float, key_hash: str | None = None,
                       hourly: bool = False) -> list[ActivityRow]:
        bucket = "strftime('%Y-%m-%dT%H:00', created_at, 'unixepoch')" if hourly else "date(created_at, 'unixepoch')"
        sql = (
            f"SELECT {bucket}, model, provider_name, COALESCE(app_title, http_referer), "
            "key_hash, COUNT(*), SUM(tokens_prompt), SUM(tokens_completion), SUM(COALESCE(tokens_reasoning, 0)), "
            "SUM(cost_nanos), SUM((SELECT COUNT(*) FROM generation_feedback f WHERE f.generation_id = generations.id)) "
            "FROM generations WHERE created_at >= ? AND created_at < ?"
            + (" AND key_hash = ?" if key_hash else "")
            + " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3"
        )
        params: tuple[Any, ...] = (since, until, key_hash) if key_hash else (since, until)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [ActivityRow(*row[:5], *(int(v or 0) for v in row[5:])) for row in rows]

    # -- dashboard sessions --------------------------------------------------------------------------------

    async def insert_session(self, session: SessionRecord) -> None:
        values = tuple(getattr(session, c) for c in SESSION_COLUMNS)
        sql = (f"INSERT INTO dashboard_sessions ({', '.join(SESSION_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in SESSION_COLUMNS)})")
        await self._run(lambda db: db.execute(sql, values))

    async def get_session(self, token_hash: str) -> SessionRecord | None:
        rows = await self._run(
            lambda db: db.execute(f"{_SESSION_SELECT} WHERE token_hash = ?", (token_hash,)).fetchall())
        return SessionRecord(*rows[0]) if rows else None

    async def attach_playground(self, token_hash: str, sealed: bytes, key_hash: str) -> bool:
        cursor = await self._run(lambda db: db.execute(
            "UPDATE dashboard_sessions SET playground = ?, playground_hash = ? "
            "WHERE token_hash = ? AND playground_hash IS NULL", (sealed, key_hash, token_hash)))
        return bool(cursor.rowcount)

    async def delete_session(self, token_hash: str) -> SessionRecord | None:
        rows = await self._run(lambda db: db.execute(
            f"DELETE FROM dashboard_sessions WHERE token_hash = ? {_SESSION_RETURNING}", (token_hash,)).fetchall())
        return SessionRecord(*rows[0]) if rows else None

    async def purge_sessions(self, now: float) -> list[SessionRecord]:
        rows = await self._run(lambda db: db.execute(
            f"DELETE FROM dashboard_sessions WHERE expires_at <= ? {_SESSION_RETURNING}", (now,)).fetchall())
        return [SessionRecord(*row) for row in rows]

    # -- credits -------------------------------------------------------------------------------------------

    async def grant_credits(self, grant_id: str, amount_nanos: int, note: str | None, at: float) -> None:
        await self._run(lambda db: db.execute(
            "INSERT INTO credit_grants VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (grant_id, amount_nanos, note, at)))

    async def credit_totals(self) -> tuple[int, int]:
        def read(db: sqlite3.Connection) -> tuple[int, int]:
            granted = db.execute("SELECT COALESCE(SUM(amount_nanos), 0) FROM credit_grants").fetchone()[0]
            used = db.execute("SELECT COALESCE(SUM(cost_nanos), 0) FROM generations").fetchone()[0]
            return int(granted), int(used)

        return await self._run(read)


class _Migrating:
    """The store's connection as the migration runner uses it; each call runs on the store's worker thread."""

    paramstyle: Literal["qmark", "numeric"] = "qmark"

    def __init__(self, run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]) -> None:
        self._run = run

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run(lambda db: db.execute(sql, args))

    async def column(self, sql: str) -> list[Any]:
        rows: list[Any] = await self._run(lambda db: [row[0] for row in db.execute(sql)])
        return rows

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # IMMEDIATE takes the write lock at once, so another process's write cannot slip in mid-migration.
        await self.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await self.execute("ROLLBACK")
            raise
        await self.execute("COMMIT")


def _key(row: tuple[Any, ...]) -> KeyRecord:
    record = KeyRecord(*row)
    for name in _BOOL_KEY_FIELDS:
        setattr(record, name, bool(getattr(record, name)))
    return record


def _generation(row: tuple[Any, ...]) -> GenerationRecord:
    record = GenerationRecord(*row)
    for name in _BOOL_GEN_FIELDS:
        setattr(record, name, bool(getattr(record, name)))
    return record
