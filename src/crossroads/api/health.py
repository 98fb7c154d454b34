"""`GET /health` and `GET /ready`: unauthenticated, cheap, for load balancers and orchestrators.

    /health   the process is up and its event loop answers: 200 {"status": "ok"}
    /ready    it can serve: the database answers, the catalog is loaded, the spool directory is writable;
              200 {"status": "ready", "checks": {...}}, else 503 naming each failing check

The database check asks the database at most once a `DATABASE_TTL` seconds, however often `/ready` is
polled (concurrent polls share one query); the others cost three system calls (the spool) or nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Final

from aiohttp import web

from crossroads.api.render import json_response
from crossroads.catalog.types import Catalog
from crossroads.storage.base import Store

log = logging.getLogger("crossroads.health")

#: Seconds a database check's result is reused.
DATABASE_TTL: Final = 1.0
#: Seconds the database has to answer before it counts as unreachable.
DATABASE_TIMEOUT: Final = 2.0


class HealthAPI:
    def __init__(self, store: Store, catalog: Catalog, spool_dir: Path) -> None:
        self.store = store
        self.catalog = catalog
        self.spool_dir = spool_dir
        self._checked = -DATABASE_TTL
        self._database: str | None = None
        self._checking: asyncio.Future[str | None] | None = None

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        checks = {
            "database": await self._database_check(),
            "catalog": None if self.catalog.models else "no models are loaded",
            "spool": self._spool_check(),
        }
        failing = {name: problem for name, problem in checks.items() if problem is not None}
        if failing:
            return json_response({"status": "unavailable", "failing": sorted(failing), "checks": {
                name: problem or "ok" for name, problem in checks.items()}}, status=503)
        return json_response({"status": "ready", "checks": dict.fromkeys(checks, "ok")})

    def _spool_check(self) -> str | None:
        """None when a file can be created in the spool directory (what the spool does when its file is
        full), else what went wrong. A real write, not a permission bit check: the root user passes those,
        and a read-only or vanished volume does not show in them."""
        probe = self.spool_dir / f".ready-{os.getpid()}"
        try:
            os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
            os.unlink(probe)
        except OSError as exc:
            return f"the spool directory {self.spool_dir} is not writable ({exc.strerror})"
        return None

    async def _database_check(self) -> str | None:
        """None when the database answered within the last `DATABASE_TTL` seconds, else what went wrong."""
        if time.monotonic() - self._checked < DATABASE_TTL:
            return self._database
        if self._checking is None:
            self._checking = asyncio.ensure_future(self._ask_database())
        checking = self._checking
        try:
            return await asyncio.shield(checking)
        finally:
            if self._checking is checking and checking.done():
                self._checking = None

    async def _ask_database(self) -> str | None:
        try:
            await asyncio.wait_for(self.store.ping(), DATABASE_TIMEOUT)
            problem = None
        except Exception as exc:
            problem = f"the database is unreachable ({type(exc).__name__})"
            log.warning("readiness: %s", problem, exc_info=True)
        self._database, self._checked = problem, time.monotonic()
        return problem


__all__ = ["DATABASE_TTL", "HealthAPI"]
