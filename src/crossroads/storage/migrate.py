"""Migrations: the numbered SQL files of `storage/migrations/`, split into statements, and the one runner that
applies those a database lacks, on every backend.

Each migration runs in one transaction together with its row in `schema_migrations`, so a failed one leaves
nothing behind and runs again on the next start. A backend lends the runner a `Connection` (how to execute,
read a column and open a transaction) and keeps what is its own, such as PostgreSQL's lock against several
processes migrating at once. The files are portable SQL, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any, Final, Literal, Protocol

#: (version, name, sql): `0001_initial.sql` is `(1, "initial", <its text>)`.
Migration = tuple[int, str, str]

_LEDGER: Final = ("CREATE TABLE IF NOT EXISTS schema_migrations "
                  "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")


class Connection(Protocol):
    """A backend's connection, as the runner uses it."""

    @property
    def paramstyle(self) -> Literal["qmark", "numeric"]:
        """How a query writes its parameters: `?` (SQLite) or `$1, $2, ...` (PostgreSQL)."""
        ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def column(self, sql: str) -> list[Any]:
        """The first column of every row `sql` returns."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[object]: ...


async def apply_migrations(db: Connection, available: Iterable[Migration] | None = None) -> list[int]:
    """Apply the migrations `db` lacks, of `available` (by default every file); return the versions applied."""
    await db.execute(_LEDGER)
    done = set(await db.column("SELECT version FROM schema_migrations"))
    marks = "?, ?, ?" if db.paramstyle == "qmark" else "$1, $2, $3"
    applied = []
    for version, name, sql in migrations() if available is None else available:
        if version in done:
            continue
        async with db.transaction():
            for statement in split_sql(sql):
                await db.execute(statement)
            await db.execute(f"INSERT INTO schema_migrations VALUES ({marks})", version, name, time.time())
        applied.append(version)
    return applied


def migrations() -> list[Migration]:
    """(version, name, sql) of every migration, in order."""
    out = []
    folder = resources.files("crossroads.storage").joinpath("migrations")
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.partition("_")
            out.append((int(number), name[:-4], entry.read_text("utf-8")))
    return sorted(out)


#: What may open a quoted stretch of SQL, or a comment: everything up to its end is one piece.
_PIECE: Final = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"                    # -- to the line's end; /* */ (not nested)
    r"|(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z)"                  # E'...' (PostgreSQL): backslash escapes
    r"|'(?:[^']|'')*(?:'|\Z)"                                       # '...', a quote doubled inside
    r'|"(?:[^"]|"")*(?:"|\Z)'                                       # "identifier"
    r"|(?<![\w$])(?P<tag>\$(?:[A-Za-z_]\w*)?\$).*?(?:(?P=tag)|\Z)"  # $$...$$, $tag$...$tag$
    r"|(?P<end>;)",
    re.DOTALL,
)


def split_sql(script: str) -> list[str]:
    """A migration file → its statements, without comments or the closing `;`.

    A `;` ends a statement, and `--` or `/*` starts a comment, only outside string literals ('...', E'...'),
    quoted identifiers ("...") and dollar-quoted strings ($$...$$, $tag$...$tag$), as PostgreSQL and SQLite
    read them. An unterminated one runs to the end of the file, where the database reports it.
    """
    statements = []
    current: list[str] = []
    position = 0
    for match in _PIECE.finditer(script):
        current.append(script[position:match.start()])
        position = match.end()
        if match["end"] is not None:
            statements.append("".join(current))
            current = []
        elif match["comment"] is None:
            current.append(match[0])
        elif match[0].startswith("/*"):
            current.append(" ")
        else:
            current[-1] = current[-1].rstrip(" \t")
    statements.append("".join(current) + script[position:])
    return [text for text in (s.strip() for s in statements) if text]


__all__ = ["Connection", "Migration", "apply_migrations", "migrations", "split_sql"]
