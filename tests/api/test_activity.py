"""`/activity`: usage by day and model/provider (OpenRouter's shape), and by app and key for dashboards."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import Gateway
from tests.openapi import validate_response

MESSAGES = [{"role": "user", "content": "hi"}]


async def _chat(http: aiohttp.ClientSession, gw: Gateway, key: str, app: str, model: str) -> float:
    async with http.post(f"{gw.url}/chat/completions", json={"model": model, "messages": MESSAGES},
                         headers={"Authorization": f"Bearer {key}", "X-Title": app}) as resp:
        body = await resp.json()
        cost: float = body["usage"]["cost"]
        return cost


async def _activity(http: aiohttp.ClientSession, gw: Gateway, auth: dict[str, str], **params: str) -> Any:
    async with http.get(f"{gw.url}/activity", params=params, headers=auth) as resp:
        return resp.status, await resp.json()


async def test_activity_by_model_app_and_key(gateway: Gateway) -> None:
    other = await gateway.new_key()
    async with aiohttp.ClientSession() as http:
        spent = [await _chat(http, gateway, gateway.key, "App A", "openai/gpt-4o"),
                 await _chat(http, gateway, gateway.key, "App B", "openai/gpt-4o"),
                 await _chat(http, gateway, other, "App A", "openai/gpt-4o-mini")]
        status, body = await _activity(http, gateway, gateway.admin)
        assert status == 200
        validate_response(body, "/activity", "get", 200)
        by_model = {row["model"]: row for row in body["data"]}
        assert by_model["openai/gpt-4o"]["requests"] == 2
        assert by_model["openai/gpt-4o"]["usage"] == sum(spent[:2])
        assert by_model["openai/gpt-4o-mini"]["provider_name"] == "Simulator"
        _, body = await _activity(http, gateway, gateway.admin, group_by="app")
        assert {row["app"]: row["requests"] for row in body["data"]} == {"App A": 2, "App B": 1}
        _, body = await _activity(http, gateway, gateway.auth, group_by="key")
        assert [row["requests"] for row in body["data"]] == [2]  # an API key sees only itself
        status, body = await _activity(http, gateway, gateway.auth, group_by="colour")
        assert status == 400 and body["error"]["metadata"]["param"] == "group_by"


async def test_activity_by_hour_week_and_month_sums_to_the_days(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        spent = [await _chat(http, gateway, gateway.key, "App A", "openai/gpt-4o") for _ in range(2)]
        totals = {}
        for granularity in ("hour", "day", "week", "month"):
            status, body = await _activity(http, gateway, gateway.admin, granularity=granularity)
            assert status == 200, body
            rows = body["data"]
            totals[granularity] = (sum(r["requests"] for r in rows), round(sum(r["usage"] for r in rows), 9))
            assert len(rows) == 1
            date = rows[0]["date"]
            if granularity == "hour":
                assert date.endswith(":00") and "T" in date
            if granularity == "month":
                assert date.endswith("-01")
        assert set(totals.values()) == {(2, round(sum(spent), 9))}
        status, body = await _activity(http, gateway, gateway.admin, granularity="year")
        assert status == 400 and body["error"]["metadata"]["param"] == "granularity"
