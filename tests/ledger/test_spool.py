"""The spool and its shipper: records written by a gateway reach the database, survive the gateway, and
are stored exactly once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from crossroads.ledger.shipper import Shipper
from crossroads.ledger.spool import Spool, locked, read_lines
from crossroads.storage.base import GenerationRecord


def record(n: int, cost: int = 10) -> GenerationRecord:
    return GenerationRecord(id=f"gen-{n}", key_hash="k", created_at=time.time(), model="a/b", streamed=False,
                            status=200, tokens_prompt=1, tokens_completion=2, cost_nanos=cost)


def stored(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, cost_nanos FROM generations").fetchall())


def test_lines_are_read_up_to_the_last_complete_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, file_bytes=4096, tag="t1")
    spool.open()
    for n in range(3):
        spool.append(record(n))
    path = tmp_path / spool.position.file
    assert locked(path)
    records, offset, bad = read_lines(path, 0, final=False)
    assert [r.id for r in records] == ["gen-0", "gen-1", "gen-2"] and offset == spool.position.offset and not bad
    # A line being copied in (no newline yet) is not read; a garbled complete line waits while the writer lives.
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(b'{"id": "gen-x", "key_')
    assert read_lines(path, offset, final=False) == ([], offset, 0)
    spool.close()
    assert not locked(path)


def test_a_garbled_line_is_skipped_once_its_writer_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "dead-000001.jsonl"
    good = orjson.dumps(record(1)) + b"\n"
    path.write_bytes(good + b'{"id": "gen-2", "key_h' + b"\n" + good.replace(b"gen-1", b"gen-3") + b"\0" * 64)
    records, _, bad = read_lines(path, 0, final=True)
    assert [r.id for r in records] == ["gen-1", "gen-3"] and bad == 1


def test_files_rotate_when_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path, file_bytes=1024, tag="t2")
    spool.open()
    for n in range(20):
        spool.append(record(n))
    files = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert len(files) > 3 and files[0] == "t2-000001.jsonl"
    assert [locked(tmp_path / f) for f in files] == [False] * (len(files) - 1) + [True]
    total = sum(len(read_lines(tmp_path / f, 0, final=True)[0]) for f in files)
    assert total == 20
    spool.close()


async def test_shipper_stores_records_and_cleans_up(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    from crossroads.storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    await store.open()
    await store.close()
    spool = Spool(tmp_path / "spool", file_bytes=2048)
    shipper = Shipper(spool, url, interval=0.02)
    spool.open()
    await shipper.start()
    for n in range(30):  # several files
        spool.append(record(n, cost=n))
    assert await shipper.synced()
    assert stored(db) == {f"gen-{n}": n for n in range(30)}
    await shipper.close()
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


async def test_files_left_by_a_dead_gateway_are_shipped_by_the_next_one(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    directory = tmp_path / "spool"
    directory.mkdir()
    # A gateway that died: its file is unlocked and half written; one of its records was already stored.
    (directory / "deadbeef-000001.jsonl").write_bytes(
        b"".join(orjson.dumps(record(n)) + b"\n" for n in range(5)) + b'{"id":"gen-5","ke' + b"\0" * 100)
    from crossroads.storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    await store.open()
    await store.write_generations([record(0)])
    await store.close()
    spool = Spool(directory)
    shipper = Shipper(spool, url, interval=0.02)
    spool.open()
    await shipper.start()  # its first pass takes over the dead gateway's file
    assert sorted(stored(db)) == [f"gen-{n}" for n in range(5)]
    assert not (directory / "deadbeef-000001.jsonl").exists()
    await shipper.close()


async def test_a_killed_shipper_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    from crossroads.storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    await store.open()
    await store.close()
    spool = Spool(tmp_path / "spool")
    shipper = Shipper(spool, f"sqlite:///{db}", interval=0.02)
    spool.open()
    await shipper.start()
    assert shipper._process is not None
    os.kill(shipper._process.pid, 9)
    spool.append(record(1))
    assert await shipper.synced(within=10)
    assert "gen-1" in stored(db)
    await shipper.close()


async def test_backlog_and_lag_until_the_shipper_stores_the_records(tmp_path: Path) -> None:
    import asyncio

    spool = Spool(tmp_path / "spool", tag="t9")
    spool.open()
    shipper = Shipper(spool, f"sqlite:///{tmp_path}/db.sqlite")
    assert shipper.backlog() == (0, 0.0)
    for n in range(3):
        spool.append(record(n))
    assert shipper.backlog() == (spool.position.offset, 0.0)  # first seen now
    await asyncio.sleep(0.2)
    behind, lag = shipper.backlog()
    assert behind == spool.position.offset and lag >= 0.15  # the loop may wake a hair early
    await shipper.start()  # its first pass stores them
    try:
        assert await shipper.synced()
        assert shipper.backlog() == (0, 0.0)
    finally:
        await shipper.close()


async def test_with_nothing_left_behind_start_does_not_wait_for_the_first_pass(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    from crossroads.storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    await store.open()
    await store.close()
    directory = tmp_path / "spool"
    directory.mkdir()
    # Another gateway, alive: its file is locked; its own shipper stores it, so it holds nobody up.
    alive = Spool(directory, tag="alive")
    alive.open()
    spool = Spool(directory, tag="self")
    shipper = Shipper(spool, f"sqlite:///{db}", interval=0.02)
    spool.open()
    await shipper.start()
    try:
        assert not shipper._ready.is_set()  # the process is still starting: nothing was waiting for it
        spool.append(record(1))  # the first records wait in the spool for the first pass
        assert await shipper.started(within=10)
        assert await shipper.synced(within=10)
        assert stored(db) == {"gen-1": 10}
        assert shipper._process is not None and os.sched_getscheduler(shipper._process.pid) == os.SCHED_IDLE
    finally:
        await shipper.close()
        alive.close()
    assert [p.name for p in directory.glob("*.jsonl")] == ["alive-000001.jsonl"]


async def test_a_shipper_that_never_starts_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool", tag="t")
    spool.open()
    shipper = Shipper(spool, "sqlite:///" + str(tmp_path / "db.sqlite"), environ={"PYTHONPATH": str(tmp_path)})
    (tmp_path / "crossroads").mkdir()  # a package of that name first on the path: the shipper cannot import
    (tmp_path / "crossroads" / "__init__.py").write_text("raise SystemExit(3)\n")
    await shipper.start(wait=0.3)  # nothing left behind: it does not wait
    try:
        for _ in range(100):
            if "ledger shipper did not start within 0.3s" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "ledger shipper did not start within 0.3s; finished generations wait in the spool" in caplog.text
    finally:
        await shipper.close(within=2)
