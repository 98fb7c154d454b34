"""`GET /health` and `GET /ready`: unauthenticated; ready says 503, naming the check, when the spool
directory cannot be written or the database is gone, and 200 again once they are back."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import GatewayFactory


async def get(root: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{root}{path}") as got:
        return got.status, await got.json()


async def ready_becomes(root: str, status: int) -> Any:
    """`/ready`'s body once it answers `status` (the database check is cached for a second)."""
    deadline = time.monotonic() + 5
    while True:
        got, body = await get(root, "/ready")
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        await asyncio.sleep(0.1)


async def test_health_and_ready(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    async with start_gateway() as gw:
        assert await get(gw.root, "/health") == (200, {"status": "ok"})
        assert await get(gw.root, "/ready") == (200, {"status": "ready", "checks": {
            "database": "ok", "catalog": "ok", "spool": "ok"}})

        spool = gw.services.settings.spool_dir
        os.rename(spool, tmp_path / "spool-away")
        spool.write_text("not a directory")
        status, body = await get(gw.root, "/ready")
        assert status == 503 and body["failing"] == ["spool"] and "not writable" in body["checks"]["spool"]
        spool.unlink()
        os.rename(tmp_path / "spool-away", spool)
        await ready_becomes(gw.root, 200)

        # The shipper has opened the database: one opening it after the file has gone would make a new one.
        assert await gw.services.ledger.started()
        database = Path(gw.services.settings.database_url.removeprefix("sqlite:///"))
        os.rename(database, tmp_path / "db-away")
        body = await ready_becomes(gw.root, 503)
        assert body["failing"] == ["database"] and "unreachable" in body["checks"]["database"]
        assert await get(gw.root, "/health") == (200, {"status": "ok"})
        os.rename(tmp_path / "db-away", database)
        await ready_becomes(gw.root, 200)


async def test_the_database_is_asked_at_most_once_a_second(start_gateway: GatewayFactory) -> None:
    async with start_gateway() as gw:
        store = gw.services.store
        asked = 0
        ping = store.ping

        async def counting() -> None:
            nonlocal asked
            asked += 1
            await ping()

        store.ping = counting  # type: ignore[method-assign]
        started = time.monotonic()
        statuses = await asyncio.gather(*(get(gw.root, "/ready") for _ in range(20)))
        for _ in range(10):
            statuses.append(await get(gw.root, "/ready"))
        assert all(status == 200 for status, _ in statuses)
        assert asked <= 1 + int(time.monotonic() - started)
