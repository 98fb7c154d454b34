"""Keep the catalog up to date at run time from an OpenRouter-format model list (`CROSSROADS_CATALOG_URL`),
when the operator allows it (`CROSSROADS_CATALOG_REFRESH=on`).

Once a day (or as `CROSSROADS_CATALOG_REFRESH_INTERVAL` says) the list is fetched, imported like
`crossroads catalog import` does (`importer.py`), and the catalog it makes is loaded in a worker thread,
off the request path. Only a catalog that loads is used: it is written to the cache file
(`CROSSROADS_CATALOG_CACHE`, replaced atomically) and handed to `apply`, which swaps it in without a
restart. A failed fetch, a document of the wrong shape or a catalog that does not load changes nothing:
the last good copy stays on disk and in use, and the next attempt comes sooner (`RETRY`).

The cache file is merged over the built-in catalog and under the operator's own `CROSSROADS_CATALOG`
files, so local corrections keep winning; at start it is loaded like those files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from crossroads.catalog import importer, openrouter, source
from crossroads.catalog.types import Catalog
from crossroads.errors import ConfigError

log = logging.getLogger("crossroads.catalog")

#: Seconds between refreshes by default: a day.
DAILY: Final = 86_400.0
#: Seconds before another attempt after a failed one.
RETRY: Final = 3_600.0

#: Builds the catalog with an imported file merged in (None: without one), as at start.
Builder = Callable[[Path | None], Catalog]


class CatalogRefresh:
    """Refreshes the catalog from `url` every `every` seconds in a background task (`start`, `close`)."""

    def __init__(self, url: str, cache: Path, build: Builder, apply: Callable[[Catalog], None], *,
                 every: float = DAILY, retry: float = RETRY) -> None:
        self.url = url
        self.cache = cache
        self.build = build
        self.apply = apply
        self.every = every
        self.retry = min(retry, every)
        #: The catalog in use, as far as this refresh knows: the import maps providers and ids against it.
        self.current: Catalog | None = None
        self._task: asyncio.Task[None] | None = None

    def initial(self) -> Catalog:
        """The catalog to start with: with the last good copy when there is one that still loads."""
        if self.cache.is_file():
            try:
                self.current = self.build(self.cache)
                return self.current
            except ConfigError as exc:
                log.warning("catalog refresh: ignoring the cached copy %s: %s", self.cache, exc)
        self.current = self.build(None)
        return self.current

    async def refresh(self) -> bool:
        """Fetch, import and apply the list once; False (and the current catalog kept) when anything fails."""
        try:
            body = await source.read(self.url)
            catalog = await asyncio.to_thread(self._install, body)
        except ConfigError as exc:
            log.warning("catalog refresh from %s failed; keeping the current catalog: %s", self.url, exc)
            return False
        self.current = catalog
        self.apply(catalog)
        log.info("catalog refreshed from %s: %d models", self.url, len(catalog.models))
        return True

    def _install(self, body: bytes) -> Catalog:
        """Import `body`, load the catalog it makes from a temporary file, and only then replace the cache."""
        models = openrouter.decode_models(body, self.url)
        known = self.current or self.build(None)
        document, report = importer.import_models(models, [], known, source=self.url)
        if not report.models:
            # An empty list is an upstream fault, not a market without models: keep what is known.
            raise ConfigError(f"{self.url}: the model list holds no model to import")
        for line in report.lines():
            log.debug("catalog refresh: %s", line)
        text = importer.to_toml(document, self.url, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".catalog-", suffix=".toml", dir=self.cache.parent)
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            catalog = self.build(temporary)
            os.replace(temporary, self.cache)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.cache}: {exc.strerror}") from exc
        finally:
            temporary.unlink(missing_ok=True)
        return catalog

    def due_in(self) -> float:
        """Seconds until the next refresh: none when the cached copy is missing or older than `every`."""
        try:
            age = time.time() - self.cache.stat().st_mtime
        except OSError:
            return 0.0
        return max(0.0, self.every - age)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crossroads-catalog-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        wait = self.due_in()
        while True:
            await asyncio.sleep(wait)
            try:
                ok = await self.refresh()
            except Exception:  # a bug must not end the refreshing for good
                log.exception("catalog refresh from %s failed", self.url)
                ok = False
            wait = self.every if ok else self.retry


__all__ = ["DAILY", "RETRY", "Builder", "CatalogRefresh"]
