"""Response caching end to end through the `openai` and `anthropic` SDKs: opt-in by request or by key, hits
marked, free and recorded, whole replies, streams, embeddings and rankings; in memory and in Redis (shared by
two gateways)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from crossroads.ledger.keys import hash_secret
from crossroads.sim import SimServer
from tests.api import test_rerank
from tests.api.test_embeddings import embedding_catalog
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


# -- streams -------------------------------------------------------------------------------------------------

STORES = [pytest.param({}, id="memory"), pytest.param({"CROSSROADS_REDIS_URL": REDIS_URL}, id="redis")]


@contextlib.asynccontextmanager
async def cached_gateway(start_gateway: GatewayFactory, sim: SimServer, store: dict[str, str],
                         catalog: str | None = None, keys: dict[str, str] | None = None) -> AsyncIterator[Gateway]:
    ns = namespace()
    env = {**(keys or provider_keys("alpha")), **store, "CROSSROADS_REDIS_NAMESPACE": ns}
    try:
        async with start_gateway(env=env, catalog=catalog or toml(sim)) as gw:
            yield gw
    finally:
        if store:
            await wipe(ns)


async def raw_stream(gw: Gateway, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, headers={**gw.auth, **headers}) as http:
        return await http.post("/chat/completions", json={**ASK, "stream": True})


@pytest.mark.parametrize("store", STORES)
async def test_a_stream_is_stored_once_complete_and_replayed_as_a_stream(
        start_gateway: GatewayFactory, sim: SimServer, store: dict[str, str]) -> None:
    async with cached_gateway(start_gateway, sim, store) as gw:
        miss = await raw_stream(gw, CACHE)
        hit = await raw_stream(gw, CACHE)
        assert len(sim.requests) == 1
        assert miss.headers["x-openrouter-cache-status"] == "MISS"
        assert hit.headers["x-openrouter-cache-status"] == "HIT"
        assert hit.headers["content-type"] == "text/event-stream"
        old, new = miss.headers["x-generation-id"], hit.headers["x-generation-id"]
        assert hit.headers["x-openrouter-cache-source-id"] == old and new != old
        # The same events in the same framing, under the new id; only the usage figures differ.
        sent, replayed = miss.text.replace(old, new).split("\n"), hit.text.split("\n")
        assert len(sent) == len(replayed) and replayed[-3:] == ["data: [DONE]", "", ""]
        differing = [(a, b) for a, b in zip(sent, replayed, strict=True) if a != b]
        assert len(differing) == 1 and '"usage"' in differing[0][0]
        usage = json.loads(differing[0][1][len("data: "):])["usage"]
        assert usage["total_tokens"] == 0 and usage["cost"] == 0
        assert json.loads(differing[0][0][len("data: "):])["usage"]["cost"] > 0

        # Through the SDK (its body is another entry: property order differs), the hit is a stream like any
        # other, recorded as a free generation.
        async with client(gw) as c:
            streams = [[chunk async for chunk in await c.chat.completions.create(
                **ASK, stream=True, extra_headers=CACHE)] for _ in range(2)]
            whole = await ask(c, CACHE)
        live, chunks = streams
        assert {chunk.id for chunk in chunks} == {chunks[0].id} and chunks[0].id != live[0].id
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        assert text == "".join(chunk.choices[0].delta.content or "" for chunk in live if chunk.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 0
        assert live[-1].usage is not None and live[-1].usage.completion_tokens > 0
        record = gw.services.ledger.recent(chunks[0].id)
        assert record is not None and record.streamed and record.cost_nanos == 0 and record.status == 200
        # A stream and a whole reply to the same question are different entries.
        assert whole.headers["x-openrouter-cache-status"] == "MISS" and len(sim.requests) == 3


@pytest.mark.parametrize("store", STORES)
async def test_a_stream_that_broke_is_not_stored(start_gateway: GatewayFactory, sim: SimServer,
                                                 store: dict[str, str]) -> None:
    catalog = upstream_catalog(sim.url, {"test/m": [{"provider": "alpha", "upstream_model": "m#drop_after=2"}]})
    async with cached_gateway(start_gateway, sim, store, catalog) as gw:
        for _ in range(2):
            broken = await raw_stream(gw, CACHE)
            assert broken.headers["x-openrouter-cache-status"] == "MISS"
            assert '"finish_reason":"error"' in broken.text
    assert len(sim.requests) == 2


async def test_a_messages_stream_is_replayed_in_its_own_framing(gateway: Gateway) -> None:
    ask_claude: dict[str, Any] = {"model": "anthropic/claude-sonnet-4.5", "max_tokens": 50,
                                  "messages": [{"role": "user", "content": "Say hello."}],
                                  "extra_body": {"temperature": 0}}
    async with anthropic.AsyncAnthropic(base_url=gateway.root + "/api", api_key=gateway.key, max_retries=0,
                                        default_headers=CACHE) as c:
        replies = []
        for _ in range(2):
            async with c.messages.stream(**ask_claude) as events:
                kinds = [event.type async for event in events]
                replies.append((kinds, await events.get_final_message()))
    (live_kinds, live), (hit_kinds, hit) = replies
    assert hit_kinds == live_kinds and hit.content == live.content and hit.id != live.id
    assert live.usage.output_tokens > 0 and hit.usage.output_tokens == 0 and hit.usage.input_tokens == 0
    simulator = gateway.services.simulator
    assert simulator is not None and len([r for r in simulator.requests if r.path.endswith("/messages")]) == 1


# -- embeddings ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
async def test_embeddings_are_cached(start_gateway: GatewayFactory, sim: SimServer, store: dict[str, str]) -> None:
    catalog = embedding_catalog(sim.url, [{"provider": "alpha", "upstream_model": "text-embedding-3-small"}])
    async with cached_gateway(start_gateway, sim, store, catalog) as gw:
        opted = await gw.new_key(response_cache=True)
        async with client(gw, opted) as c, client(gw) as plain:
            embed = c.embeddings.with_raw_response.create
            first = await embed(model="test/embed", input=["a cat", "a dog"], encoding_format="float")
            second = await embed(model="test/embed", input=["a cat", "a dog"], encoding_format="float")
            other = await embed(model="test/embed", input=["a cow"], encoding_format="float")
            skipped = await embed(model="test/embed", input=["a cat", "a dog"], encoding_format="float",
                                  extra_headers={"X-OpenRouter-Cache": "false"})
            asked = await plain.embeddings.with_raw_response.create(model="test/embed", input="x",
                                                                    extra_headers=CACHE)
            unasked = await plain.embeddings.with_raw_response.create(model="test/embed", input="x")
        assert [r.headers.get("x-openrouter-cache-status") for r in (first, second, other, skipped, asked, unasked)] \
            == ["MISS", "HIT", "MISS", None, "MISS", None]
        assert len(sim.requests) == 5
        miss, hit = first.parse(), second.parse()
        assert [d.embedding for d in hit.data] == [d.embedding for d in miss.data]
        hit_id = (hit.model_extra or {})["id"]
        assert hit_id != (miss.model_extra or {})["id"] and second.headers["x-generation-id"] == hit_id
        assert second.headers["x-openrouter-cache-source-id"] == (miss.model_extra or {})["id"]
        assert hit.usage.prompt_tokens == 0 and (hit.usage.model_extra or {})["cost"] == 0
        assert (miss.usage.model_extra or {})["cost"] > 0
        record = gw.services.ledger.recent(hit_id)
        assert record is not None and record.cost_nanos == 0 and record.model == "test/embed"


@pytest.mark.parametrize("store", STORES)
async def test_base64_embeddings_are_cached_whole(start_gateway: GatewayFactory, sim: SimServer,
                                                  store: dict[str, str]) -> None:
    """A provider's base64 vectors go out beside the gateway's fields, unjoined; the cache keeps them whole."""
    catalog = embedding_catalog(sim.url, [{"provider": "alpha", "upstream_model": "text-embedding-3-small"}],
                                quirks={"alpha": "simulator"})  # a provider asked for base64
    async with cached_gateway(start_gateway, sim, store, catalog) as gw:
        opted = await gw.new_key(response_cache=True)
        async with client(gw, opted) as c:
            first = await c.embeddings.with_raw_response.create(model="test/embed", input=["a cat", "a dog"])
            second = await c.embeddings.with_raw_response.create(model="test/embed", input=["a cat", "a dog"])
        assert [r.headers.get("x-openrouter-cache-status") for r in (first, second)] == ["MISS", "HIT"]
        assert sim.requests[-1].body["encoding_format"] == "base64" and len(sim.requests) == 1
        miss, hit = json.loads(first.content), json.loads(second.content)
        assert hit["data"] == miss["data"] and all(isinstance(d["embedding"], str) for d in hit["data"])
        assert hit["usage"]["cost"] == 0 and miss["usage"]["cost"] > 0


@pytest.mark.parametrize("store", STORES)
async def test_rankings_are_cached(start_gateway: GatewayFactory, sim: SimServer, store: dict[str, str]) -> None:
    catalog = test_rerank.catalog(sim.url, [("generic", "rerank-m")])
    body = {"model": "test/rerank", "query": test_rerank.QUERY, "documents": test_rerank.DOCUMENTS, "top_n": 2}
    async with cached_gateway(start_gateway, sim, store, catalog, test_rerank.keys(1)) as gw, \
            httpx.AsyncClient(base_url=gw.url, headers=gw.auth) as http:
        first = await http.post("/rerank", json=body, headers=CACHE)
        second = await http.post("/rerank", json=body, headers=CACHE)
        other = await http.post("/rerank", json={**body, "top_n": 1}, headers=CACHE)
        unasked = await http.post("/rerank", json=body)
    assert [r.status_code for r in (first, second, other, unasked)] == [200] * 4
    assert [r.headers.get("x-openrouter-cache-status") for r in (first, second, other, unasked)] \
        == ["MISS", "HIT", "MISS", None]
    assert len(sim.requests) == 3
    miss, hit = first.json(), second.json()
    assert hit["results"] == miss["results"] and hit["id"] != miss["id"]
    assert second.headers["x-openrouter-cache-source-id"] == miss["id"]
    assert hit["usage"]["cost"] == 0 and miss["usage"]["cost"] > 0
    record = gw.services.ledger.recent(hit["id"])
    assert record is not None and record.cost_nanos == 0 and record.model == "test/rerank"
