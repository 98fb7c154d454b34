"""Response caching end to end through the `openai` SDK: opt-in by request or by key, hits marked and free,
recorded; in memory and in Redis (shared by two gateways)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from crossroads.ledger.keys import hash_secret
from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog
from tests.openapi import schema_for, validate
from tests.redis_support import REDIS_URL, namespace, wipe

ASK: dict[str, Any] = {"model": "test/m", "messages": [{"role": "user", "content": "Name a colour"}],
                       "temperature": 0}
CACHE = {"X-OpenRouter-Cache": "true"}


def client(gw: Gateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=key or gw.key, max_retries=0)


def toml(sim: SimServer) -> str:
    return upstream_catalog(sim.url, {"test/m": [{"provider": "alpha", "upstream_model": "m"}]})


async def ask(c: openai.AsyncOpenAI, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    return await c.chat.completions.with_raw_response.create(**{**ASK, **fields}, extra_headers=headers or {})


async def test_an_opted_in_deterministic_request_is_answered_from_the_cache(start_gateway: GatewayFactory,
                                                                            sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=toml(sim)) as gw, client(gw) as c:
        first = await ask(c, CACHE)
        second = await ask(c, CACHE)
        upstream_calls = len(sim.requests)
        miss, hit = first.parse(), second.parse()
        assert first.headers["x-openrouter-cache-status"] == "MISS"
        assert second.headers["x-openrouter-cache-status"] == "HIT"
        assert second.headers["x-openrouter-cache-source-id"] == miss.id
        assert int(second.headers["x-openrouter-cache-ttl"]) == 300
        assert int(second.headers["x-openrouter-cache-age"]) >= 0
        assert upstream_calls == 1
        assert hit.id != miss.id and second.headers["x-generation-id"] == hit.id
        assert hit.choices[0].message.content == miss.choices[0].message.content
        assert hit.usage is not None and hit.usage.total_tokens == 0 and (hit.usage.model_extra or {})["cost"] == 0
        assert miss.usage is not None and (miss.usage.model_extra or {})["cost"] > 0
        record = gw.services.ledger.recent(hit.id)
        assert record is not None and record.status == 200 and record.cost_nanos == 0


@pytest.mark.parametrize(("headers", "fields"), [
    ({}, {}),                                          # not opted in
    ({"X-OpenRouter-Cache": "false"}, {}),             # opted out
    (CACHE, {"temperature": 0.7}),                     # not deterministic
])
async def test_what_is_not_cached(start_gateway: GatewayFactory, sim: SimServer, headers: dict[str, str],
                                  fields: dict[str, Any]) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=toml(sim)) as gw, client(gw) as c:
        for _ in range(2):
            reply = await ask(c, headers, **fields)
            assert "x-openrouter-cache-status" not in reply.headers
    assert len(sim.requests) == 2


async def test_the_operator_setting_a_seed_keys_and_clearing(start_gateway: GatewayFactory, sim: SimServer) -> None:
    env = {**provider_keys("alpha"), "CROSSROADS_RESPONSE_CACHE": "on"}
    async with start_gateway(env=env, catalog=toml(sim)) as gw, client(gw) as c:
        await ask(c, temperature=1, seed=7)
        assert (await ask(c, temperature=1, seed=7)).headers["x-openrouter-cache-status"] == "HIT"
        assert len(sim.requests) == 1
        async with client(gw, await gw.new_key()) as other:  # another key never sees this key's entries
            assert (await ask(other, temperature=1, seed=7)).headers["x-openrouter-cache-status"] == "MISS"
        cleared = await ask(c, {"X-OpenRouter-Cache-Clear": "true"}, temperature=1, seed=7)
        assert cleared.headers["x-openrouter-cache-status"] == "MISS"
        with pytest.raises(openai.BadRequestError):
            await ask(c, {"X-OpenRouter-Cache-TTL": "0"})
    assert len(sim.requests) == 3


async def test_gateways_sharing_redis_share_the_cache(start_gateway: GatewayFactory, sim: SimServer,
                                                      tmp_path: Path) -> None:
    ns = namespace()
    env = {**provider_keys("alpha"), "CROSSROADS_REDIS_URL": REDIS_URL, "CROSSROADS_REDIS_NAMESPACE": ns,
           "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/shared.db"}
    try:
        async with start_gateway(env=env, catalog=toml(sim)) as one, start_gateway(env=env, catalog=toml(sim)) as two:
            key = await one.new_key()
            await two.services.keys.load()
            async with client(one, key) as c1, client(two, key) as c2:
                first = await ask(c1, CACHE)
                second = await ask(c2, CACHE)
        assert first.headers["x-openrouter-cache-status"] == "MISS"
        assert second.headers["x-openrouter-cache-status"] == "HIT"
        assert len(sim.requests) == 1
    finally:
        await wipe(ns)


# -- a key that opts in --------------------------------------------------------------------------------------

async def test_a_key_opts_all_its_requests_in(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=toml(sim)) as gw, \
            httpx.AsyncClient(base_url=gw.url, headers=gw.admin) as admin:
        made = await admin.post("/keys", json={"name": "cached", "response_cache": True})
        assert made.status_code == 201 and made.json()["data"]["response_cache"] is True
        validate(made.json(), schema_for("/keys", "post", 201))
        secret, key_hash = made.json()["key"], made.json()["data"]["hash"]
        stored = await gw.services.store.get_key(key_hash)
        assert stored is not None and stored.response_cache is True
        async with client(gw, secret) as c:
            assert (await ask(c)).headers["x-openrouter-cache-status"] == "MISS"
            hit = await ask(c)
            assert hit.headers["x-openrouter-cache-status"] == "HIT"
            assert "x-openrouter-cache-status" not in (await ask(c, {"X-OpenRouter-Cache": "false"})).headers
            assert "x-openrouter-cache-status" not in (await ask(c, temperature=0.5)).headers  # not deterministic
            assert len(sim.requests) == 3
            record = gw.services.ledger.recent(hit.parse().id)
            assert record is not None and record.cost_nanos == 0 and record.key_hash == key_hash

            refused = await admin.patch(f"/keys/{key_hash}", json={"response_cache": None})
            assert refused.status_code == 400 and refused.json()["error"]["metadata"]["param"] == "body.response_cache"
            off = await admin.patch(f"/keys/{key_hash}", json={"response_cache": False})
            assert off.json()["data"]["response_cache"] is False
            assert (await admin.get(f"/keys/{key_hash}")).json()["data"]["response_cache"] is False
            assert "x-openrouter-cache-status" not in (await ask(c)).headers
        assert (await admin.get(f"/keys/{gw.services.keys.all()[0].hash}")).json()["data"]["response_cache"] is False
    assert len(sim.requests) == 4


async def test_a_hit_keeps_to_the_guardrails_assigned_since(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=toml(sim)) as gw, client(gw) as c, \
            httpx.AsyncClient(base_url=gw.url, headers=gw.admin) as admin:
        await ask(c, CACHE)
        rail = (await admin.post("/guardrails", json={"name": "elsewhere", "allowed_models": ["openai/*"]})).json()
        await admin.post(f"/guardrails/{rail['data']['id']}/assignments/keys",
                         json={"key_hashes": [hash_secret(gw.key)]})
        with pytest.raises(openai.PermissionDeniedError, match="elsewhere"):
            await ask(c, CACHE)
    assert len(sim.requests) == 1
