"""Fallbacks end to end: provider fallbacks, model fallbacks, `allow_fallbacks`, timeouts, the aggregated
error when everything fails, and the routing trace of each generation."""

from __future__ import annotations

from typing import Any

import aiohttp

from crossroads.sim import SimServer
from tests.conftest import GatewayFactory, provider_keys, upstream_catalog

MESSAGES = [{"role": "user", "content": "hello"}]
ORDER = {"order": ["alpha", "beta", "gamma"]}


async def post(gw: Any, **body: Any) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession(headers=gw.auth) as http, \
            http.post(f"{gw.url}/chat/completions", json={"messages": MESSAGES, **body}) as resp:
        return resp.status, await resp.json(), resp.headers


def three(sim: SimServer, a: str, b: str, c: str = "") -> str:
    return upstream_catalog(sim.url, {"test/model": [
        {"provider": "alpha", "upstream_model": f"a#{a}" if a else "a"},
        {"provider": "beta", "upstream_model": f"b#{b}" if b else "b"},
        {"provider": "gamma", "upstream_model": f"c#{c}" if c else "c"},
    ], "test/backup": [{"provider": "gamma", "upstream_model": "backup", "prompt": "7", "completion": "9"}]})


async def test_provider_fallback_and_the_trace(start_gateway: GatewayFactory, sim: SimServer) -> None:
    catalog = three(sim, "status=503", "status=429;retry_after=2")
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=catalog) as gw:
        status, body, _ = await post(gw, model="test/model", provider=ORDER)
        assert status == 200 and body["provider"] == "Gamma"
        stats_status, stats, _ = await _generation(gw, body["id"])
    assert stats_status == 200
    trace = stats["data"]["routing_trace"]
    assert [(t["provider"], t["status"]) for t in trace] == [("Alpha", 503), ("Beta", 429), ("Gamma", 200)]
    assert [r["provider_name"] for r in stats["data"]["provider_responses"]] == ["Alpha", "Beta", "Gamma"]


async def _generation(gw: Any, generation_id: str) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession(headers=gw.auth) as http, \
            http.get(f"{gw.url}/generation", params={"id": generation_id}) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_no_fallback_when_not_allowed(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=three(sim, "status=503", "")) as gw:
        status, body, _ = await post(gw, model="test/model",
                                     provider={"order": ["alpha"], "allow_fallbacks": False})
    assert status == 503
    assert [e["provider"] for e in body["error"]["metadata"]["previous_errors"]] == ["Alpha"]


async def test_bad_request_from_a_provider_is_not_retried_elsewhere(start_gateway: GatewayFactory,
                                                                   sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=three(sim, "status=400", "")) as gw:
        status, body, _ = await post(gw, model="test/model", provider=ORDER)
    assert status == 400 and len(body["error"]["metadata"]["previous_errors"]) == 1


async def test_model_fallback_on_any_error(start_gateway: GatewayFactory, sim: SimServer) -> None:
    catalog = three(sim, "status=400", "status=400", "status=400")
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=catalog) as gw:
        status, body, _ = await post(gw, model="test/model", models=["test/backup"])
    assert status == 200 and body["model"] == "test/backup"
    # Priced by the model that served: 7 and 9 dollars per million.
    usage = body["usage"]
    assert usage["cost"] == (usage["prompt_tokens"] * 7 + usage["completion_tokens"] * 9) / 1e6


async def test_everything_failing_aggregates_the_errors(start_gateway: GatewayFactory, sim: SimServer) -> None:
    catalog = three(sim, "status=503", "status=502", "status=500")
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=catalog) as gw:
        status, body, _ = await post(gw, model="test/model")
    assert status == 503
    assert body["error"]["metadata"]["availability"]["code"] == "temporarily_unavailable"
    assert sorted(e["status"] for e in body["error"]["metadata"]["previous_errors"]) == [500, 502, 503]


async def test_all_rate_limited_is_429_with_the_shortest_retry_after(start_gateway: GatewayFactory,
                                                                     sim: SimServer) -> None:
    catalog = three(sim, "status=429;retry_after=9", "status=429;retry_after=4", "status=429;retry_after=6")
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=catalog) as gw:
        status, body, headers = await post(gw, model="test/model")
    assert status == 429 and headers["Retry-After"] == "4"
    assert body["error"]["metadata"]["availability"]["code"] == "capacity_exhausted"


async def test_slow_first_byte_moves_to_the_next_provider(start_gateway: GatewayFactory, sim: SimServer) -> None:
    env = {**provider_keys("alpha", "beta", "gamma"), "CROSSROADS_FIRST_BYTE_TIMEOUT": "0.3"}
    async with start_gateway(env=env, catalog=three(sim, "latency=3000", "")) as gw:
        status, body, _ = await post(gw, model="test/model", provider=ORDER)
        assert status == 200 and body["provider"] == "Beta"
        async with aiohttp.ClientSession(headers=gw.auth) as http, \
                http.post(f"{gw.url}/chat/completions", json={"messages": MESSAGES, "model": "test/model",
                                                               "stream": True, "provider": ORDER}) as resp:
            text = await resp.text()
    assert '"provider":"Beta"' in text and text.rstrip().endswith("[DONE]")


async def test_max_price_refuses_with_a_clear_404(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=three(sim, "", "")) as gw:
        status, body, _ = await post(gw, model="test/model", provider={"max_price": {"prompt": "0.5"}})
    assert status == 404
    assert body["error"]["metadata"]["availability"]["excluded_by"] == ["max_price"]
    assert "max_price" in body["error"]["message"]
