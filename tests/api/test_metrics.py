"""`GET /metrics` end to end: requests through every kind of inbound API, then the scrape parsed by
prometheus_client's parser — counters rise by exactly the requests made, histogram counts match them,
tokens and cost equal what `/generation` reports."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog
from tests.metrics_support import generation, scrape, total

HI = [{"role": "user", "content": "Hi"}]


async def post(gw: Gateway, path: str, body: dict[str, Any],
               key: str | None = None) -> tuple[int, tuple[str, str] | None]:
    """(status, (generation id, key)) of one request; a stream is read to its end."""
    key = key or gw.key
    async with aiohttp.ClientSession() as session, session.post(f"{gw.url}{path}", json=body,
                                                                headers={"Authorization": f"Bearer {key}"}) as got:
        await got.read()
        generation_id = got.headers.get("X-Generation-Id")
        return got.status, (generation_id, key) if generation_id else None


@pytest.fixture
async def gw(start_gateway: GatewayFactory, sim: SimServer) -> Any:
    catalog = upstream_catalog(sim.url, {"test/fallback": [{"provider": "alpha", "upstream_model": "m#status=503"},
                                                           {"provider": "beta", "upstream_model": "m"}],
                                         "test/slow": [{"provider": "alpha", "upstream_model": "m#tokens=40;tps=20"}]})
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog, simulator="on") as gateway:
        yield gateway


async def test_counters_histograms_tokens_and_cost_match_the_requests(gw: Gateway) -> None:
    made = [
        ("chat", 200, await post(gw, "/chat/completions", {"model": "openai/gpt-4o", "messages": HI})),
        ("chat", 200, await post(gw, "/chat/completions", {"model": "openai/gpt-4o", "messages": HI,
                                                           "stream": True})),
        ("messages", 200, await post(gw, "/messages", {"model": "anthropic/claude-sonnet-4.5", "max_tokens": 64,
                                                       "messages": HI})),
        ("responses", 200, await post(gw, "/responses", {"model": "openai/gpt-4o", "input": "Hi"})),
        ("embeddings", 200, await post(gw, "/embeddings", {"model": "openai/text-embedding-3-small",
                                                           "input": "hello"})),
        ("chat", 200, await post(gw, "/chat/completions", {"model": "test/fallback", "messages": HI,
                                                           "provider": {"order": ["alpha", "beta"]}})),
    ]
    poor = await gw.new_key(limit_nanos=1000)
    made.append(("chat", 402, await post(gw, "/chat/completions", {"model": "openai/gpt-4o", "messages": HI}, poor)))
    limited = await gw.new_key(rate_limit_requests=1, rate_limit_interval=60)
    for status in (200, 429):
        made.append(("chat", status, await post(gw, "/chat/completions", {"model": "openai/gpt-4o", "messages": HI},
                                                limited)))
    assert [status for _, status, (got, _) in made] == [got for _, _, (got, _) in made]

    samples = await scrape(gw.root)
    for api in ("chat", "messages", "responses", "embeddings"):
        for status in (200, 402, 429):
            expected = sum(1 for a, s, _ in made if a == api and s == status)
            assert total(samples, "crossroads_requests_total", api=api, status=str(status)) == expected, (api, status)
        count = sum(1 for a, _, _ in made if a == api)
        assert total(samples, "gen_ai_server_request_duration_seconds_count", api=api) == count
        assert total(samples, "gen_ai_server_request_duration_seconds_bucket", api=api, le="+Inf") == count
    served = [generation_id for _, status, (_, generation_id) in made if status == 200 and generation_id]
    assert total(samples, "gen_ai_server_time_to_first_token_seconds_count") == len(served)
    assert total(samples, "crossroads_limit_refusals_total", api="chat", limit="rate") == 1
    assert total(samples, "crossroads_limit_refusals_total", api="chat", limit="credit") == 1
    # The fallback: one failure at Alpha, then a success at Beta; every other request one success.
    assert total(samples, "crossroads_upstream_attempts_total", gen_ai_provider_name="Alpha", outcome="failure") == 1
    assert total(samples, "crossroads_upstream_attempts_total", gen_ai_provider_name="Beta", outcome="success") == 1
    assert total(samples, "crossroads_upstream_attempts_total", outcome="success") == len(served)
    assert total(samples, "crossroads_requests_in_flight") == 0
    assert total(samples, "crossroads_streams_open") == 0
    assert total(samples, "process_resident_memory_bytes") > 10_000_000

    await gw.services.ledger.flush()
    records = [await generation(gw.url, {"Authorization": f"Bearer {key}"}, generation_id)
               for generation_id, key in served]
    tokens: dict[tuple[str, str, str], int] = {}
    for record in records:
        for kind, field in (("input", "tokens_prompt"), ("output", "tokens_completion")):
            labels = (str(record["model"]), str(record["provider_name"]), kind)
            tokens[labels] = tokens.get(labels, 0) + int(record[field])  # type: ignore[call-overload]
    assert len(tokens) == 2 * 4  # (gpt-4o, claude, the embedding model, test/fallback at Beta) × (input, output)
    for (model, provider, kind), expected in tokens.items():
        assert expected > 0 or (kind == "output" and "embedding" in model)
        assert total(samples, "gen_ai_client_token_usage_sum", gen_ai_request_model=model,
                     gen_ai_provider_name=provider, gen_ai_token_type=kind) == expected, (model, kind)
    assert total(samples, "gen_ai_client_token_usage_count") == 2 * len(served)
    cost = sum(float(record["total_cost"]) for record in records)  # type: ignore[arg-type]
    assert cost > 0
    assert math.isclose(total(samples, "crossroads_cost_usd_total"), cost, rel_tol=1e-9)


async def test_requests_in_flight_and_open_streams(gw: Gateway) -> None:
    body = {"model": "test/slow", "messages": HI, "stream": True, "provider": {"only": ["alpha"]}}
    async with aiohttp.ClientSession() as session, session.post(f"{gw.url}/chat/completions", json=body,
                                                                headers=gw.auth) as got:
        assert got.status == 200
        await got.content.readline()  # the stream has begun; it lasts about two seconds
        during = await scrape(gw.root)
        await got.read()
    after = await scrape(gw.root)
    assert total(during, "crossroads_requests_in_flight") == 1 and total(during, "crossroads_streams_open") == 1
    assert total(after, "crossroads_requests_in_flight") == 0 and total(after, "crossroads_streams_open") == 0
    assert total(after, "crossroads_requests_total", api="chat", gen_ai_request_model="test/slow") == 1


async def test_metrics_off_is_404_and_a_token_is_required_when_set(start_gateway: GatewayFactory) -> None:
    async with start_gateway(env={"CROSSROADS_METRICS": "off"}) as gw, aiohttp.ClientSession() as session:
        async with session.get(f"{gw.root}/metrics") as got:
            assert got.status == 404
        assert (await post(gw, "/chat/completions", {"model": "openai/gpt-4o", "messages": HI}))[0] == 200
    token = "scrape-token-0123456789"
    async with start_gateway(env={"CROSSROADS_METRICS_TOKEN": token}) as gw, aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            async with session.get(f"{gw.root}/metrics", headers=headers) as got:
                assert got.status == 401
                assert (await got.json())["error"]["code"] == 401
        samples = await scrape(gw.root, {"Authorization": f"Bearer {token}"})
        assert total(samples, "crossroads_requests_total") == 0
