"""What a generation is charged when it fails: nothing without output (zero completion insurance), and what
was delivered when a stream breaks after content reached the client. Through a real gateway and simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog


async def _stream(gw: Gateway, http: aiohttp.ClientSession) -> tuple[str, list[dict[str, Any]]]:
    """POST a streamed completion; the generation id and the SSE events' JSON payloads."""
    import orjson

    async with http.post(f"{gw.url}/chat/completions", headers=gw.auth,
                         json={"model": "test/model", "stream": True,
                               "messages": [{"role": "user", "content": "hello there"}]}) as response:
        assert response.status == 200
        body = await response.read()
        generation_id = response.headers["X-Generation-Id"]
    events = [orjson.loads(line[6:]) for line in body.split(b"\n")
              if line.startswith(b"data: ") and line != b"data: [DONE]"]
    return generation_id, events


async def _generation(gw: Gateway, http: aiohttp.ClientSession, generation_id: str) -> dict[str, Any]:
    async with http.get(f"{gw.url}/generation", params={"id": generation_id}, headers=gw.auth) as response:
        assert response.status == 200
        data: dict[str, Any] = (await response.json())["data"]
        return data


async def _key_usage(gw: Gateway, http: aiohttp.ClientSession) -> Decimal:
    async with http.get(f"{gw.url}/key", headers=gw.auth) as response:
        return Decimal(str((await response.json())["data"]["usage"]))


def _catalog(sim_url: str, directive: str) -> str:
    return upstream_catalog(sim_url, {"test/model": [
        {"provider": "alpha", "upstream_model": f"m#{directive}", "prompt": "1000", "completion": "2000"}]})


async def test_a_stream_that_breaks_before_any_output_costs_nothing(start_gateway: GatewayFactory,
                                                                    sim: Any) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url, "drop_after=0")) as gw, \
            aiohttp.ClientSession() as http:
        generation_id, events = await _stream(gw, http)
        assert events[-1]["choices"][0]["finish_reason"] == "error" and "error" in events[-1]
        assert not any(e["choices"][0]["delta"].get("content") for e in events if e.get("choices"))
        generation = await _generation(gw, http, generation_id)
        assert generation["tokens_completion"] == 0
        assert generation["total_cost"] == 0
        assert await _key_usage(gw, http) == 0


async def test_a_stream_that_breaks_after_output_is_charged_for_what_was_delivered(
        start_gateway: GatewayFactory, sim: Any) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url, "drop_after=3;tokens=20")) \
            as gw, aiohttp.ClientSession() as http:
        generation_id, events = await _stream(gw, http)
        delivered = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
        assert delivered and events[-1]["choices"][0]["finish_reason"] == "error"
        generation = await _generation(gw, http, generation_id)
        # No usage came from the provider: the tokens are estimated from what reached the client.
        assert generation["usage_estimated"] is True
        assert 0 < generation["tokens_completion"] < 20
        expected = (Decimal(generation["tokens_prompt"]) * 1000 + Decimal(generation["tokens_completion"]) * 2000) \
            / 1_000_000
        assert Decimal(str(generation["total_cost"])) == pytest.approx(expected)
        assert await _key_usage(gw, http) == pytest.approx(expected)


async def test_a_request_every_provider_failed_costs_nothing(start_gateway: GatewayFactory, sim: Any) -> None:
    async with start_gateway(env=provider_keys("alpha"), catalog=_catalog(sim.url, "status=500")) as gw, \
            aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/chat/completions", headers=gw.auth,
                             json={"model": "test/model", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 503
            generation_id = r.headers["X-Generation-Id"]
        generation = await _generation(gw, http, generation_id)
        assert generation["total_cost"] == 0
        assert await _key_usage(gw, http) == 0
