"""`catalog/refresh.py`: the run-time refresh from an OpenRouter-format model list served over HTTP. A good
list is imported, cached and applied; anything else keeps the last good copy on disk and in use."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from crossroads.catalog.loader import load
from crossroads.catalog.refresh import CatalogRefresh
from crossroads.catalog.types import Catalog
from tests.conftest import GatewayFactory

FIXTURES = Path(__file__).parent.parent / "data" / "openrouter"


def model_list(gpt4o_prompt: str = "0.000003") -> dict[str, Any]:
    """The recorded model list with GPT-4o's prompt price changed, so a refreshed catalog is told apart from
    the built-in one (2.5 USD per million)."""
    document: dict[str, Any] = json.loads((FIXTURES / "models.json").read_bytes())
    for model in document["data"]:
        if model["id"] == "openai/gpt-4o":
            model["pricing"]["prompt"] = gpt4o_prompt
    return document


@dataclass
class Upstream:
    """An HTTP server playing OpenRouter's `/api/v1/models`: `body` is what it answers, `status` with what."""

    url: str = ""
    status: int = 200
    body: bytes = field(default_factory=lambda: json.dumps(model_list()).encode())
    hits: int = 0
    seen: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def reach(self, hits: int) -> None:
        """Until the list has been asked for `hits` times in all."""
        async with self.seen:
            await self.seen.wait_for(lambda: self.hits >= hits)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()

    async def models(request: web.Request) -> web.Response:
        async with state.seen:
            state.hits += 1
            state.seen.notify_all()
        return web.Response(status=state.status, body=state.body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/models"
    yield state
    await runner.cleanup()


def build(imported: Path | None) -> Catalog:
    return load([imported] if imported else [], {})


def prompt_price(catalog: Catalog) -> Decimal:
    return next(e for e in catalog.models["openai/gpt-4o"].endpoints if e.tag == "openai").pricing.prompt


def refresher(upstream: Upstream, cache: Path, applied: list[Catalog], **timing: float) -> CatalogRefresh:
    return CatalogRefresh(upstream.url, cache, build, applied.append, **timing)


def contents(path: Path) -> bytes:
    return path.read_bytes()


def names(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir()]


async def test_a_good_list_is_cached_and_applied(upstream: Upstream, tmp_path: Path) -> None:
    applied: list[Catalog] = []
    cache = tmp_path / "state" / "catalog.toml"
    refresh = refresher(upstream, cache, applied)
    assert prompt_price(refresh.initial()) == Decimal("0.0000025")  # nothing cached yet: the built-in price
    assert await refresh.refresh()
    assert [prompt_price(c) for c in applied] == [Decimal("0.000003")]
    assert '[models."openai/gpt-4o"]' in cache.read_text()
    # The next start begins with the cached copy.
    assert prompt_price(refresher(upstream, cache, []).initial()) == Decimal("0.000003")
    assert refresh.due_in() > 86_000


@pytest.mark.parametrize(("status", "body"), [
    (500, b'{"error": {"code": 500, "message": "down"}}'),
    (200, b"<html>maintenance</html>"),
    (200, b'{"data": [{"id": "openai/gpt-4o"}]}'),
    (200, b'{"data": []}'),
])
async def test_a_failed_refresh_keeps_the_last_good_copy(upstream: Upstream, tmp_path: Path, status: int,
                                                         body: bytes) -> None:
    applied: list[Catalog] = []
    cache = tmp_path / "catalog.toml"
    refresh = refresher(upstream, cache, applied)
    assert await refresh.refresh()
    good = contents(cache)
    upstream.status, upstream.body = status, body
    assert not await refresh.refresh()
    assert len(applied) == 1 and contents(cache) == good
    assert names(tmp_path) == ["catalog.toml"]  # no temporary file left behind
    assert prompt_price(refresher(upstream, cache, []).initial()) == Decimal("0.000003")


async def test_an_unreachable_list_keeps_the_current_catalog(tmp_path: Path) -> None:
    applied: list[Catalog] = []
    refresh = CatalogRefresh("http://127.0.0.1:9/api/v1/models", tmp_path / "c.toml", build, applied.append)
    assert not await refresh.refresh()
    assert applied == [] and not (tmp_path / "c.toml").exists()


async def test_a_damaged_cache_is_ignored_at_start(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "catalog.toml"
    cache.write_text('[models."openai/gpt-4o"]\ncontext_length = "long"\n')
    assert prompt_price(refresher(upstream, cache, []).initial()) == Decimal("0.0000025")


async def test_the_background_task_retries_after_a_failure_and_then_waits(upstream: Upstream,
                                                                          tmp_path: Path) -> None:
    applied = asyncio.Event()
    cache = tmp_path / "catalog.toml"
    upstream.status = 503
    refresh = CatalogRefresh(upstream.url, cache, build, lambda catalog: applied.set(), every=3600, retry=0.05)
    refresh.start()
    try:
        async with asyncio.timeout(10):
            await upstream.reach(2)
            upstream.status = 200
            await applied.wait()
        hits = upstream.hits
        await asyncio.sleep(0.3)
        assert upstream.hits == hits  # a success waits a whole interval
    finally:
        await refresh.close()


async def test_a_fresh_cache_is_not_fetched_again_at_start(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "catalog.toml"
    assert await refresher(upstream, cache, []).refresh()
    refresh = refresher(upstream, cache, [], every=3600)
    refresh.start()
    await asyncio.sleep(0.2)
    await refresh.close()
    assert upstream.hits == 1
    os.utime(cache, (0, 0))  # a copy older than the interval is refreshed right away
    assert refresher(upstream, cache, [], every=3600).due_in() == 0


async def test_the_gateway_applies_a_refresh_without_a_restart(start_gateway: GatewayFactory, upstream: Upstream,
                                                               tmp_path: Path) -> None:
    cache = tmp_path / "refreshed.toml"
    env = {"CROSSROADS_CATALOG_URL": upstream.url, "CROSSROADS_CATALOG_REFRESH": "on",
           "CROSSROADS_CATALOG_CACHE": str(cache), "CROSSROADS_CATALOG_REFRESH_INTERVAL": "1"}
    async with start_gateway(env=env) as gw, aiohttp.ClientSession() as http:
        async def gpt4o() -> str:
            async with http.get(f"{gw.url}/models/openai/gpt-4o/endpoints") as response:
                body = await response.json()
            return str(next(e for e in body["data"]["endpoints"] if e["tag"] == "openai")["pricing"]["prompt"])

        refresh = gw.services.refresh
        assert refresh is not None
        refreshed = asyncio.Event()
        swap = refresh.apply

        def apply(catalog: Catalog) -> None:
            swap(catalog)
            refreshed.set()

        refresh.apply = apply

        async def price_becomes(value: str) -> None:
            while await gpt4o() != value:
                refreshed.clear()
                await refreshed.wait()

        async with asyncio.timeout(30):
            await price_becomes("0.000003")
            upstream.body = json.dumps(model_list("0.0000035")).encode()
            await price_becomes("0.0000035")
            upstream.status = 500
            await upstream.reach(upstream.hits + 2)
            assert await gpt4o() == "0.0000035"  # the last good copy stays in use
        assert gw.services.catalog is gw.services.planner.catalog
        async with http.post(f"{gw.url}/chat/completions", headers=gw.auth, json={
                "model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}) as response:
            assert response.status == 200
    assert "0.0000035" not in cache.read_text() and 'prompt = "3.5"' in cache.read_text()
