"""Several gateway processes sharing PostgreSQL and Redis, and a gateway killed with SIGKILL under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.redis_support import REDIS_URL, namespace, wipe

PG_ROOT = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN = "multi-process-admin-key"
MESSAGES = [{"role": "user", "content": "Tell me a short story about a lighthouse."}]


@dataclass
class Process:
    url: str
    popen: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def spawn(env: dict[str, str], cwd: Path) -> Process:
    port = free_port()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("CROSSROADS_") and not k.endswith(("_API_KEY", "_TOKEN"))}
    with (cwd / f"gateway-{port}.log").open("w") as log:  # kept for a failing test's post-mortem
        popen = subprocess.Popen([sys.executable, "-m", "crossroads", "serve", "--port", str(port)],
                                 env={**base, "CROSSROADS_ADMIN_KEY": ADMIN, **env}, cwd=cwd,
                                 stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return Process(f"{url}/api/v1", popen)
        if popen.poll() is not None:
            raise RuntimeError(f"gateway exited with {popen.returncode}")
        time.sleep(0.05)
    popen.kill()
    raise RuntimeError("gateway did not start")


def stop(process: Process, sig: int = signal.SIGTERM) -> None:
    if process.popen.poll() is None:
        process.popen.send_signal(sig)
        try:
            process.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    schema = f"mp_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ROOT)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_ROOT}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.fixture
async def shared_env(pg_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    ns = namespace()
    yield {"CROSSROADS_DATABASE_URL": pg_url, "CROSSROADS_REDIS_URL": REDIS_URL, "CROSSROADS_REDIS_NAMESPACE": ns,
           "CROSSROADS_SIMULATOR": "on"}
    await wipe(ns)


@pytest.fixture
def two(shared_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    first = spawn({**shared_env, "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool-a")}, tmp_path)
    try:
        second = spawn({**shared_env, "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool-b")}, tmp_path)
    except BaseException:
        stop(first)
        raise
    try:
        yield first, second
    finally:
        stop(first)
        stop(second)


async def create_key(http: aiohttp.ClientSession, process: Process, **fields: object) -> tuple[str, str]:
    async with http.post(f"{process.url}/keys", json={"name": "shared", **fields},
                         headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 201, await resp.text()
        body = await resp.json()
    return body["key"], body["data"]["hash"]


async def chat(http: aiohttp.ClientSession, process: Process, key: str,
               **body: object) -> tuple[int, dict[str, object]]:
    async with http.post(f"{process.url}/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": "openai/gpt-4o", "messages": MESSAGES, **body}) as resp:
        return resp.status, await resp.json()


async def test_a_small_limit_holds_across_two_processes_to_the_cent(two: tuple[Process, Process],
                                                                    pg_url: str) -> None:
    limit = 0.01
    async with aiohttp.ClientSession() as http:
        key, key_hash = await create_key(http, two[0], limit=limit)
        statuses: list[int] = []
        costs: list[float] = []
        semaphore = asyncio.Semaphore(24)

        async def one(i: int) -> None:
            async with semaphore:
                status, body = await chat(http, two[i % 2], key, max_tokens=60)
                statuses.append(status)
                if status == 200:
                    costs.append(body["usage"]["cost"])  # type: ignore[index]

        await asyncio.gather(*(one(i) for i in range(300)))
        assert set(statuses) == {200, 402}, statuses
        await asyncio.sleep(0.6)  # the ledger writes in batches
        async with http.get(f"{two[1].url}/keys/{key_hash}", headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            usage = (await resp.json())["data"]["usage"]
    db = await asyncpg.connect(pg_url)
    try:
        charged = int(await db.fetchval("SELECT SUM(cost_nanos) FROM generations WHERE key_hash = $1", key_hash))
        rows = await db.fetchval("SELECT COUNT(*) FROM generations WHERE key_hash = $1 AND status = 200", key_hash)
    finally:
        await db.close()
    assert rows == len(costs)
    assert charged == round(sum(costs) * 1e9)  # what the key was charged is what the responses said
    assert charged <= limit * 1e9  # never past the limit
    assert usage == pytest.approx(charged / 1e9)


async def test_rate_limits_hold_across_processes(two: tuple[Process, Process]) -> None:
    async with aiohttp.ClientSession() as http:
        key, _ = await create_key(http, two[0], rate_limit_requests=10, rate_limit_interval=600)
        results = await asyncio.gather(*(chat(http, two[i % 2], key) for i in range(30)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 10 and statuses.count(429) == 20


async def test_a_key_deleted_on_one_process_is_refused_by_the_other_within_a_second(
        two: tuple[Process, Process]) -> None:
    async with aiohttp.ClientSession() as http:
        key, key_hash = await create_key(http, two[0])
        assert (await chat(http, two[1], key))[0] == 200
        async with http.delete(f"{two[0].url}/keys/{key_hash}", headers={"Authorization": f"Bearer {ADMIN}"}):
            pass
        deleted_at = time.monotonic()
        while (await chat(http, two[1], key))[0] != 401:
            assert time.monotonic() - deleted_at < 1.0
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_sigkill_under_load_loses_no_finished_generation(tmp_path: Path, pg_url: str, database: str) -> None:
    env = {"CROSSROADS_SIMULATOR": "on", "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool"),
           "CROSSROADS_DATABASE_URL": pg_url if database == "postgresql" else f"sqlite:///{tmp_path}/kill.db"}
    process = spawn(env, tmp_path)
    completed: list[tuple[str, float]] = []
    try:
        async with aiohttp.ClientSession() as http:
            key, key_hash = await create_key(http, process)

            async def hammer() -> None:
                while True:
                    try:
                        status, body = await chat(http, process, key, stream=False)
                    except (TimeoutError, aiohttp.ClientError):
                        return
                    if status == 200:
                        completed.append((str(body["id"]), float(body["usage"]["cost"])))  # type: ignore[index]

            workers = [asyncio.create_task(hammer()) for _ in range(16)]
            await asyncio.sleep(1.0)
            process.popen.send_signal(signal.SIGKILL)  # mid-load: requests in flight, ledger batches unwritten
            await asyncio.gather(*workers)
        process.popen.wait()
    finally:
        stop(process)
    assert len(completed) > 20
    restarted = spawn(env, tmp_path)  # replays the spool left by the killed process
    stop(restarted)
    if database == "sqlite":
        import sqlite3

        db = sqlite3.connect(tmp_path / "kill.db")
        rows = dict(db.execute("SELECT id, cost_nanos FROM generations WHERE key_hash = ?", (key_hash,)).fetchall())
        db.close()
    else:
        conn = await asyncpg.connect(pg_url)
        rows = {r[0]: r[1] for r in await conn.fetch("SELECT id, cost_nanos FROM generations WHERE key_hash = $1",
                                                     key_hash)}
        await conn.close()
    for generation_id, cost in completed:
        assert generation_id in rows, f"{generation_id} was answered but is not in the ledger"
        assert rows[generation_id] == round(cost * 1e9)
    assert list((tmp_path / "spool").glob("*.jsonl")) == []  # replayed, then stored: nothing left behind
