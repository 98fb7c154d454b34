"""`crossroads serve --workers 2`, the real command with the built-in simulator and SQLite, without Redis:
load spread over both workers, a key's limit held across them, a killed worker restarted without losing a
finished generation, SIGTERM draining every stream, SIGHUP reloading the catalog without a failed request;
and with Redis, workers sharing through it instead."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.metrics_support import scrape, total
from tests.redis_support import REDIS_URL, namespace, wipe
from tests.test_multiprocess import free_port

ADMIN = "workers-admin-key-0123"
MESSAGES = [{"role": "user", "content": "Tell me a short story about a lighthouse."}]
WORKER = "X-Crossroads-Worker"
#: Models whose simulated streams last about two seconds (40 tokens at 20 a second) and fifteen.
SLOW = """
[models."test/slow"]
name = "Slow"
context_length = 8192

[[models."test/slow".endpoints]]
provider = "simulator"
upstream_model = "slow#tokens=40;tps=20"
pricing = { prompt = "0.000001", completion = "0.000002" }

[models."test/slower"]
name = "Slower"
context_length = 8192

[[models."test/slower".endpoints]]
provider = "simulator"
upstream_model = "slower#tokens=300;tps=20"
pricing = { prompt = "0.000001", completion = "0.000002" }
"""
ADDED = """
[models."test/added"]
name = "Added by a reload"
context_length = 8192

[[models."test/added".endpoints]]
provider = "simulator"
upstream_model = "added"
pricing = { prompt = "0.000001", completion = "0.000002" }
"""


@dataclass
class Gateway:
    url: str
    popen: subprocess.Popen[bytes]
    key: str
    db: Path
    catalog: Path


def _start(tmp_path: Path, workers: int = 2, **env: str) -> Gateway:
    port = free_port()
    catalog = tmp_path / "catalog.toml"
    if not catalog.exists():
        catalog.write_text(SLOW)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("CROSSROADS_") and not k.endswith(("_API_KEY", "_TOKEN"))}
    out = tmp_path / "stdout.log"
    with out.open("wb") as stdout, (tmp_path / "stderr.log").open("ab") as stderr:  # kept for a post-mortem
        popen = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", "--workers", str(workers), "--port", str(port)],
            env={**base, "CROSSROADS_ADMIN_KEY": ADMIN, "CROSSROADS_SIMULATOR": "on",
                 "CROSSROADS_DEBUG_HEADERS": "on", "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
                 "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool"), "CROSSROADS_CATALOG": str(catalog), **env},
            cwd=tmp_path, stdout=stdout, stderr=stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = out.read_text()
        if "sk-cr-v1-" in text:
            key = next(word for word in text.split() if word.startswith("sk-cr-v1-"))
            return Gateway(f"http://127.0.0.1:{port}/api/v1", popen, key, tmp_path / "gateway.db", catalog)
        if popen.poll() is not None:
            raise RuntimeError(f"the supervisor exited with {popen.returncode}")
        time.sleep(0.05)
    popen.kill()
    raise RuntimeError("the workers did not start")


def _stop(gateway: Gateway) -> int:
    if gateway.popen.poll() is None:
        gateway.popen.send_signal(signal.SIGTERM)
    try:
        return gateway.popen.wait(timeout=60)
    except subprocess.TimeoutExpired:
        gateway.popen.kill()
        gateway.popen.wait()
        raise


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    running = _start(tmp_path, getattr(request, "param", 2))
    try:
        yield running
    finally:
        _stop(running)


@contextlib.asynccontextmanager
async def fresh_connections() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that opens a new connection per request, so the kernel spreads them over the workers."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=64)) as http:
        yield http


async def chat(http: aiohttp.ClientSession, gateway: Gateway, key: str,
               **body: object) -> tuple[int, dict[str, object], str]:
    async with http.post(f"{gateway.url}/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": "openai/gpt-4o", "messages": MESSAGES, **body}) as resp:
        return resp.status, await resp.json(), resp.headers.get(WORKER, "")


async def test_requests_are_spread_over_both_workers(gateway: Gateway) -> None:
    async with fresh_connections() as http:
        results = await asyncio.gather(*(chat(http, gateway, gateway.key) for _ in range(40)))
    assert {status for status, _, _ in results} == {200}
    workers = [pid for _, _, pid in results]
    assert len(set(workers)) == 2, workers
    assert min(workers.count(pid) for pid in set(workers)) >= 4  # spread, not one worker and a stray
    assert int(gateway.popen.pid) not in {int(pid) for pid in workers}  # the supervisor serves nothing


async def test_metrics_are_one_view_of_both_workers(gateway: Gateway) -> None:
    async with fresh_connections() as http:
        results = await asyncio.gather(*(chat(http, gateway, gateway.key) for _ in range(30)))
    assert {status for status, _, _ in results} == {200} and len({pid for _, _, pid in results}) == 2
    root = gateway.url.removesuffix("/api/v1")
    # Each worker moves its counts into the shared directory once a second; any worker answers for all.
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(root)
        counted = total(samples, "crossroads_requests_total", api="chat", status="200")
        if counted == 30 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert counted == 30


async def test_a_key_limit_holds_across_workers_without_redis(gateway: Gateway) -> None:
    limit = 0.01
    async with fresh_connections() as http:
        async with http.post(f"{gateway.url}/keys", json={"name": "limited", "limit": limit},
                             headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
        key, key_hash = body["key"], body["data"]["hash"]
        await asyncio.sleep(1.2)  # every worker knows the key (announced at once; refreshed within a second)
        statuses: list[int] = []
        costs: list[float] = []
        served_by: set[str] = set()
        semaphore = asyncio.Semaphore(24)

        async def one() -> None:
            async with semaphore:
                status, reply, worker = await chat(http, gateway, key, max_tokens=60)
                statuses.append(status)
                if status == 200:
                    costs.append(reply["usage"]["cost"])  # type: ignore[index]
                    served_by.add(worker)

        await asyncio.gather(*(one() for _ in range(300)))
    assert set(statuses) == {200, 402}, statuses
    assert len(served_by) == 2  # both workers spent from the one limit
    charged = await _ledger_total(gateway.db, key_hash, len(costs))
    assert charged == round(sum(costs) * 1e9)
    assert charged <= limit * 1e9  # never past the limit: each worker alone would have let it through twice


async def test_a_rate_limit_holds_across_workers_without_redis(gateway: Gateway) -> None:
    await _rate_limit_holds(gateway)


async def test_with_redis_the_workers_share_through_it(tmp_path: Path) -> None:
    ns = namespace()
    gateway = _start(tmp_path, CROSSROADS_REDIS_URL=REDIS_URL, CROSSROADS_REDIS_NAMESPACE=ns)
    try:
        await _rate_limit_holds(gateway)
        client = aioredis.Redis.from_url(REDIS_URL)
        try:  # the count is Redis's, not a broker's
            assert [k async for k in client.scan_iter(match=f"{ns}:rl:*")]
        finally:
            await client.aclose()
    finally:
        _stop(gateway)
        await wipe(ns)


async def _rate_limit_holds(gateway: Gateway) -> None:
    async with fresh_connections() as http:
        async with http.post(f"{gateway.url}/keys", json={"name": "rated", "rate_limit_requests": 10,
                                                          "rate_limit_interval": 600},
                             headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            key = (await resp.json())["key"]
        await asyncio.sleep(1.2)  # every worker knows the key
        results = await asyncio.gather(*(chat(http, gateway, key) for _ in range(30)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    assert len({worker for _, _, worker in results}) == 2


async def _ledger_total(db: Path, key_hash: str, rows: int) -> int:
    """The key's charged total once the ledger holds `rows` generations (the shippers write in batches)."""
    deadline = time.monotonic() + 10
    while True:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            count, total = conn.execute("SELECT COUNT(*), SUM(cost_nanos) FROM generations WHERE key_hash = ?",
                                        (key_hash,)).fetchone()
        if count >= rows or time.monotonic() > deadline:
            assert count == rows
            return int(total)
        await asyncio.sleep(0.1)


async def test_a_killed_worker_is_restarted_and_no_finished_generation_is_lost(gateway: Gateway) -> None:
    completed: list[str] = []
    seen: list[str] = []
    stop = asyncio.Event()
    async with fresh_connections() as http:

        both_seen = asyncio.Event()

        async def hammer() -> None:
            while not stop.is_set():
                try:
                    status, body, worker = await chat(http, gateway, gateway.key)
                except (TimeoutError, aiohttp.ClientError):
                    continue  # the killed worker's requests in flight, and its queued connections
                if status == 200:
                    completed.append(str(body["id"]))
                    seen.append(worker)
                    if len(set(seen)) == 2:
                        both_seen.set()

        load = [asyncio.create_task(hammer()) for _ in range(12)]
        await asyncio.wait_for(both_seen.wait(), 30)
        victim = seen[-1]
        os.kill(int(victim), signal.SIGKILL)  # mid-load
        killed_at = len(seen)
        deadline = time.monotonic() + 20
        while not set(seen[killed_at:]) - set(seen[:killed_at]):  # a pid not seen before: the new worker
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*load)
        assert len(completed) > 20
        missing = set(completed)
        deadline = time.monotonic() + 15
        while missing and time.monotonic() < deadline:
            for generation_id in list(missing):
                async with http.get(f"{gateway.url}/generation", params={"id": generation_id},
                                    headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
                    if resp.status == 200:
                        missing.discard(generation_id)
            await asyncio.sleep(0.2)
    assert not missing, f"{len(missing)} answered generations are not in the ledger"


async def test_sigterm_lets_every_stream_in_flight_finish(gateway: Gateway) -> None:
    started = asyncio.Event()
    first_bytes = 0

    async def stream(http: aiohttp.ClientSession) -> tuple[str, bytes]:
        nonlocal first_bytes
        async with http.post(f"{gateway.url}/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"},
                             json={"model": "test/slow", "messages": MESSAGES, "stream": True}) as resp:
            assert resp.status == 200
            body = await resp.content.readany()
            first_bytes += 1
            if first_bytes == 12:
                started.set()
            return resp.headers[WORKER], body + await resp.read()

    async with fresh_connections() as http:
        streams = [asyncio.create_task(stream(http)) for _ in range(12)]
        await asyncio.wait_for(started.wait(), 30)
        gateway.popen.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting, while the streams go on
            await chat(http, gateway, gateway.key)
        assert not any(task.done() for task in streams)
        results = await asyncio.gather(*streams)
    assert len({worker for worker, _ in results}) == 2  # both workers were draining streams
    for _, body in results:
        assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
        assert b'"finish_reason":"length"' in body or b'"finish_reason":"stop"' in body
    assert await asyncio.to_thread(gateway.popen.wait, 60) == 0


async def test_streams_longer_than_the_drain_timeout_are_cut_at_it(tmp_path: Path) -> None:
    gateway = _start(tmp_path, CROSSROADS_DRAIN_TIMEOUT="1")
    try:
        async with fresh_connections() as http:
            async with http.post(f"{gateway.url}/chat/completions",
                                 headers={"Authorization": f"Bearer {gateway.key}"},
                                 json={"model": "test/slower", "messages": MESSAGES, "stream": True}) as resp:
                assert resp.status == 200
                await resp.content.readany()
                stopped_at = time.monotonic()
                gateway.popen.send_signal(signal.SIGTERM)
                with contextlib.suppress(aiohttp.ClientError):
                    body = await resp.read()
                    assert not body.rstrip().endswith(b"data: [DONE]")  # cut, not finished
            assert await asyncio.to_thread(gateway.popen.wait, 30) == 0
            assert time.monotonic() - stopped_at < 10  # the stream alone would have taken 15 s
    finally:
        _stop(gateway)


@pytest.mark.parametrize("gateway", [1, 2], indirect=True, ids=["one-worker", "two-workers"])
async def test_sighup_reloads_the_catalog_without_a_failed_request(gateway: Gateway) -> None:
    failures: list[object] = []
    stop = asyncio.Event()
    async with fresh_connections() as http:

        async def load() -> None:
            while not stop.is_set():
                try:
                    status, body, _ = await chat(http, gateway, gateway.key, stream=False)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failures.append(exc)
                    continue
                if status != 200:
                    failures.append(body)

        async def models() -> set[str]:
            async with http.get(f"{gateway.url}/models") as resp:
                return {m["id"] for m in (await resp.json())["data"]}

        assert "test/added" not in await models()
        running = [asyncio.create_task(load()) for _ in range(8)]
        await asyncio.sleep(0.5)
        gateway.catalog.write_text(SLOW + ADDED)
        gateway.popen.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:  # every worker (fresh connections land on either) lists the new model
            listings = await asyncio.gather(*(models() for _ in range(10)))
            if all("test/added" in listing for listing in listings):
                break
            assert time.monotonic() < deadline, "the new model did not appear"
            await asyncio.sleep(0.1)
        replies = await asyncio.gather(*(chat(http, gateway, gateway.key, model="test/added") for _ in range(10)))
        assert {status for status, _, _ in replies} == {200}
        gateway.catalog.write_text("[models.broken")  # a bad file: logged, the current catalog stays
        gateway.popen.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        assert {status for status, _, _ in await asyncio.gather(
            *(chat(http, gateway, gateway.key, model="test/added") for _ in range(10)))} == {200}
        stop.set()
        await asyncio.gather(*running)
    assert failures == []
