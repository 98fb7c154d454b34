"""A scripted outage of a model's cheapest provider under a steady stream of requests: the client sees no
failure, traffic moves away and comes back, and `/endpoints` shows the outage and the recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from crossroads.routing import health as health_module
from crossroads.sim import SimServer
from tests.conftest import GatewayFactory, provider_keys, upstream_catalog


async def endpoint_figures(http: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    async with http.get(f"{url}/models/test/model/endpoints") as resp:
        body = await resp.json()
    return {e["provider_name"]: e for e in body["data"]["endpoints"]}


async def test_outage_of_the_cheapest_provider_costs_no_failed_request(
        start_gateway: GatewayFactory, sim: SimServer, monkeypatch: Any) -> None:
    monkeypatch.setattr(health_module, "OUTAGE_WINDOW", 1.0)  # a short window keeps the test short
    catalog = upstream_catalog(sim.url, {"test/model": [
        {"provider": "alpha", "upstream_model": "cheap", "prompt": "1", "completion": "1"},
        {"provider": "beta", "upstream_model": "pricier", "prompt": "2", "completion": "2"},
    ]})
    served: dict[str, int] = {}
    failures: list[int] = []
    async with start_gateway(env=provider_keys("alpha", "beta"), catalog=catalog) as gw, \
            aiohttp.ClientSession(headers=gw.auth) as http:

        async def steady(seconds: float) -> dict[str, int]:
            counts: dict[str, int] = {}
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds

            async def one() -> None:
                async with http.post(f"{gw.url}/chat/completions", json={
                        "model": "test/model", "messages": [{"role": "user", "content": "hi"}]}) as resp:
                    body = await resp.json()
                    if resp.status != 200:
                        failures.append(resp.status)
                        return
                    counts[body["provider"]] = counts.get(body["provider"], 0) + 1

            while loop.time() < end:
                await asyncio.gather(*(one() for _ in range(4)))
                await asyncio.sleep(0.01)
            for name, n in counts.items():
                served[name] = served.get(name, 0) + n
            return counts

        before = await steady(0.5)
        assert before.get("Alpha", 0) > before.get("Beta", 0)  # 1/price²: alpha takes most traffic

        sim.set_behaviour("cheap", "status=503")  # the cheap provider goes down
        during = await steady(1.5)
        assert during.get("Beta", 0) > 3 * during.get("Alpha", 0)  # traffic moved (alpha is 200 only if tried last)
        figures = (await endpoint_figures(http, gw.url))["Alpha"]
        assert figures["status"] < 0
        assert figures["uptime_last_5m"] is not None and figures["uptime_last_5m"] < 100

        sim.clear_behaviour("cheap")  # it recovers
        await asyncio.sleep(2.1)  # the outage leaves the window (1 s, counted in whole seconds)
        after = await steady(1.0)
        assert after.get("Alpha", 0) > after.get("Beta", 0)  # and is readmitted
        recovered = (await endpoint_figures(http, gw.url))["Alpha"]
        assert recovered["uptime_last_5m"] > figures["uptime_last_5m"]  # the recovery shows
        assert recovered["latency_last_30m"]["p50"] > 0 and recovered["throughput_last_30m"]["p50"] > 0
        beta = (await endpoint_figures(http, gw.url))["Beta"]
        assert beta["uptime_last_5m"] == 100.0 and beta["status"] == 0
    assert failures == []  # the client never saw the outage
    assert served["Alpha"] > 0 and served["Beta"] > 0
