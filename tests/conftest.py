"""Shared fixtures: a real gateway on a real socket, with the built-in simulator and a scratch database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crossroads.api.connections import GatewayRunner
from crossroads.app import SERVICES, Services, connection_limits, create_app
from crossroads.settings import from_environ
from crossroads.sim import SimServer

ADMIN_KEY = "test-admin-key-0123456789"


@dataclass
class Gateway:
    """A running Crossroads: `url` is the API base (`.../api/v1`), `key` a ready API key."""

    url: str
    root: str
    key: str
    services: Services

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def new_key(self, **fields: Any) -> str:
        secret, _ = await self.services.keys.create("test", **fields)
        return secret


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@contextlib.asynccontextmanager
async def open_gateway(directory: Path, n: int = 0, env: dict[str, str] | None = None, catalog: str | None = None,
                       simulator: str = "auto") -> AsyncIterator[Gateway]:
    """A gateway on a free port of 127.0.0.1, its database, spool and catalog file in `directory` (`n` tells
    apart several gateways sharing it); see `start_gateway`."""
    environ = {
        "CROSSROADS_DATABASE_URL": f"sqlite:///{directory}/gateway-{n}.db",
        "CROSSROADS_ADMIN_KEY": ADMIN_KEY,
        "CROSSROADS_SIMULATOR": simulator,
        "CROSSROADS_SPOOL_DIR": str(directory / f"spool-{n}"),
    }
    if catalog is not None:
        path = directory / f"catalog-{n}.toml"
        path.write_text(catalog)
        environ["CROSSROADS_CATALOG"] = str(path)
    environ.update(env or {})
    settings = from_environ(environ)
    app = create_app(settings)
    runner = GatewayRunner(app, limits=connection_limits(settings), handler_cancellation=True, access_log=None,
                           shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        services = app[SERVICES]
        secret, _ = await services.keys.create("test")
        root = f"http://127.0.0.1:{port}"
        yield Gateway(url=f"{root}/api/v1", root=root, key=secret, services=services)
    finally:
        await runner.cleanup()


@pytest.fixture
def start_gateway(tmp_path: Path) -> GatewayFactory:
    """`async with start_gateway(env={...}, catalog="...toml...") as gw:` — a gateway with its own database.

    `env` adds environment variables (on top of an empty environment: the machine's own provider keys never
    leak into tests); `catalog` is extra catalog TOML merged over the built-in catalog.
    """
    counter = iter(range(1000))

    def start(env: dict[str, str] | None = None, catalog: str | None = None,
              simulator: str = "auto") -> contextlib.AbstractAsyncContextManager[Gateway]:
        return open_gateway(tmp_path, next(counter), env, catalog, simulator)

    return start


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    async with start_gateway() as gw:
        yield gw


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer() as server:
        yield server


def upstream_catalog(sim_url: str, endpoints: dict[str, list[dict[str, Any]]],
                     providers: tuple[str, ...] = ("alpha", "beta", "gamma"),
                     quirks: Mapping[str, str] | None = None) -> str:
    """Catalog TOML: providers `alpha`, `beta`, ... all speaking OpenAI's format at `sim_url` (with the `generic`
    quirks unless `quirks` names others), and test models whose endpoints are given as
    `{model_id: [{provider, upstream_model, prompt, completion, ...}]}`."""
    lines = []
    for slug in providers:
        flavour = (quirks or {}).get(slug, "generic")
        lines += [f"[providers.{slug}]", f'name = "{slug.capitalize()}"', 'wire_format = "openai_chat"',
                  f'base_url = "{sim_url}/v1"', f'api_key_env = "{slug.upper()}_KEY"', f'quirks = "{flavour}"',
                  "data_policy = { training = false, retains_prompts = false }", ""]
    for model_id, entries in endpoints.items():
        lines += [f'[models."{model_id}"]', f'name = "Test: {model_id}"', "context_length = 32768",
                  "features = { tools = true, response_format = true, structured_outputs = true, logprobs = true }",
                  ""]
        for given in entries:
            entry = dict(given)
            prompt = entry.pop("prompt", "1")
            completion = entry.pop("completion", "2")
            lines.append(f'[[models."{model_id}".endpoints]]')
            for name, value in entry.items():
                lines.append(f"{name} = {_toml(value)}")
            lines += [f'pricing = {{ prompt = "{prompt}", completion = "{completion}" }}', ""]
    return "\n".join(lines)


def provider_keys(*slugs: str) -> dict[str, str]:
    return {f"{slug.upper()}_KEY": f"key-for-{slug}" for slug in slugs}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)



def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Tests run on uvloop, as the gateway does in production (`crossroads serve`)."""
    import uvloop

    return {"uvloop": uvloop.new_event_loop}
