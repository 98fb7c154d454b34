"""Migration files split into statements at the `;` that end them, never inside a literal, a quoted identifier,
a dollar-quoted body or a comment."""

from __future__ import annotations

import sqlite3

import pytest

from crossroads.storage.migrate import migrations, split_sql


@pytest.mark.parametrize(("script", "statements"), [
    ("SELECT 1;\nSELECT 2;\n", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("-- a comment; with a semicolon\nSELECT 1; -- trailing\n", ["SELECT 1"]),
    ("SELECT 1 /* a; block\n comment */ + 2;", ["SELECT 1   + 2"]),
    ("INSERT INTO t VALUES ('a -- b');", ["INSERT INTO t VALUES ('a -- b')"]),
    ("INSERT INTO t VALUES ('a; b'), ('it''s -- fine;');", ["INSERT INTO t VALUES ('a; b'), ('it''s -- fine;')"]),
    ("INSERT INTO t VALUES (E'\\' -- ;');", ["INSERT INTO t VALUES (E'\\' -- ;')"]),
    ('CREATE TABLE "a;--b" ("c""; d" TEXT);', ['CREATE TABLE "a;--b" ("c""; d" TEXT)']),
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; -- one\n $$ LANGUAGE sql; SELECT 2;",
     ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; -- one\n $$ LANGUAGE sql", "SELECT 2"]),
    ("DO $body$ BEGIN PERFORM '$$;'; END $body$; SELECT a$b$c FROM t;",
     ["DO $body$ BEGIN PERFORM '$$;'; END $body$", "SELECT a$b$c FROM t"]),
    ("SELECT 1;;\n;", ["SELECT 1"]),
    ("SELECT 'unterminated; -- to the end", ["SELECT 'unterminated; -- to the end"]),
])
def test_statements(script: str, statements: list[str]) -> None:
    assert split_sql(script) == statements


def test_literals_survive_into_the_database() -> None:
    script = ("CREATE TABLE t (x TEXT DEFAULT 'a -- b; c', \"odd;--name\" TEXT); -- the table\n"
              "INSERT INTO t (\"odd;--name\") VALUES ('it''s'); /* and a row */")
    db = sqlite3.connect(":memory:")
    for statement in split_sql(script):
        db.execute(statement)
    assert db.execute('SELECT x, "odd;--name" FROM t').fetchall() == [("a -- b; c", "it's")]


def test_the_shipped_migrations_split_into_whole_statements() -> None:
    for _, _, sql in migrations():
        for statement in split_sql(sql):
            assert "--" not in statement
            assert statement.split(None, 1)[0] in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE")
            assert statement.count("(") == statement.count(")")
