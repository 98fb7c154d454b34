"""One view across processes: two ordinary `crossroads serve` processes sharing one
`PROMETHEUS_MULTIPROC_DIR` and one SQLite file, each scrape counting both; a process that stops, or dies
and is declared dead with `process_dead`, leaves the live gauges."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
from prometheus_client.samples import Sample

from crossroads.metrics import process_dead
from tests.metrics_support import scrape, total
from tests.test_multiprocess import ADMIN, Process, spawn, stop

HI = [{"role": "user", "content": "Hi"}]


async def chat(session: aiohttp.ClientSession, process: Process, key: str, stream: bool) -> int:
    async with session.post(f"{process.url}/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": "openai/gpt-4o", "messages": HI, "stream": stream}) as got:
        await got.read()
        return got.status


async def settled(root: str, name: str, expected: float, **labels: str) -> list[Sample]:
    """The scrape once `name` reaches `expected` (other processes flush once a second)."""
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(root)
        if total(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.2)


def pids(samples: list[Sample]) -> set[str]:
    return {s.labels["pid"] for s in samples if s.name == "process_resident_memory_bytes"}


async def test_two_processes_one_view(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {"CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/shared.db",
           "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool"), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    a = spawn(env, tmp_path)
    b = spawn(env, tmp_path)
    try:
        root_a, root_b = a.url.removesuffix("/api/v1"), b.url.removesuffix("/api/v1")
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{a.url}/keys", json={"name": "metrics"},
                                    headers={"Authorization": f"Bearer {ADMIN}"}) as created:
                key = (await created.json())["key"]
            deadline = time.monotonic() + 10
            while await chat(session, b, key, False) != 200:  # b learns of the key within a second
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            statuses = [await chat(session, a, key, stream) for stream in (False, True, False)]
            statuses += [await chat(session, b, key, stream) for stream in (True, False)]
        assert statuses == [200] * 5
        made = 1 + len(statuses)
        for root in (root_a, root_b):
            samples = await settled(root, "crossroads_requests_total", made, api="chat", status="200")
            assert total(samples, "crossroads_requests_total", api="chat", status="200") == made
            assert total(samples, "gen_ai_server_time_to_first_token_seconds_count") == made
            assert total(samples, "crossroads_upstream_attempts_total", outcome="success") == made
            assert pids(samples) == {str(a.popen.pid), str(b.popen.pid)}
        count = total(samples, "gen_ai_server_request_duration_seconds_count")
        assert count == total(samples, "crossroads_requests_total")

        stop(b)  # a clean stop: b leaves the live gauges itself, its counts stay
        samples = await scrape(root_a)
        assert pids(samples) == {str(a.popen.pid)}
        assert total(samples, "crossroads_requests_total", api="chat", status="200") == made

        c = spawn(env, tmp_path)
        root_c = c.url.removesuffix("/api/v1")
        assert str(c.popen.pid) in pids(await scrape(root_c))  # a scrape flushes the process answering it
        stop(c, signal.SIGKILL)  # killed: its gauges stay until a supervisor declares it dead
        assert str(c.popen.pid) in pids(await scrape(root_a))
        process_dead(c.popen.pid, str(directory))
        assert pids(await scrape(root_a)) == {str(a.popen.pid)}
    finally:
        stop(a)
        stop(b)


async def test_a_lone_process_makes_its_own_directory(tmp_path: Path) -> None:
    lone = spawn({"CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/lone.db",
                  "CROSSROADS_SPOOL_DIR": str(tmp_path / "spool")}, tmp_path)
    try:
        samples = await scrape(lone.url.removesuffix("/api/v1"))
        assert pids(samples) == {str(lone.popen.pid)}
    finally:
        stop(lone)
