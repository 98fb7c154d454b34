"""The simulator's web search, in Exa's, Tavily's, Brave's and SearXNG's shapes."""

from __future__ import annotations

import aiohttp

from crossroads.sim import SimServer


async def test_exa_and_tavily_shapes_answer_the_same_results(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/exa/search", json={"query": "tide tables", "numResults": 3},
                             headers={"x-api-key": "k"}) as response:
            exa = await response.json()
        async with http.post(f"{sim.url}/tavily/search", json={"query": "tide tables", "max_results": 3},
                             headers={"Authorization": "Bearer k"}) as response:
            tavily = await response.json()
        async with http.post(f"{sim.url}/exa/search", json={"query": "tide tables"},
                             headers={"x-api-key": "k"}) as response:
            again = await response.json()
        async with http.post(f"{sim.url}/tavily/search", json={"query": "x"}) as response:
            assert response.status == 401
        async with http.post(f"{sim.url}/exa/search", json={"q": "x"}, headers={"x-api-key": "k"}) as response:
            assert response.status == 400
    assert [r["url"] for r in exa["results"]] == [r["url"] for r in tavily["results"]]
    assert len(exa["results"]) == 3 and len(again["results"]) == 10
    assert again["results"][:3] == exa["results"]  # deterministic
    assert exa["results"][0]["url"].startswith("https://site1.example.org/tide-tables-")
    assert "tide tables" in exa["results"][0]["text"] and "tide tables" in tavily["results"][0]["content"]


async def test_brave_and_searxng_shapes_answer_the_same_pages(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.url}/brave/res/v1/web/search", params={"q": "tide tables", "count": "3"},
                            headers={"X-Subscription-Token": "k"}) as response:
            brave = await response.json()
        async with http.get(f"{sim.url}/searxng/search", params={"q": "tide tables", "format": "json"}) as response:
            searxng = await response.json()
        async with http.get(f"{sim.url}/brave/res/v1/web/search", params={"q": "x"}) as response:
            assert response.status == 422
            assert (await response.json())["error"]["code"] == "SUBSCRIPTION_TOKEN_INVALID"
        async with http.get(f"{sim.url}/brave/res/v1/web/search", params={"q": "x", "count": "21"},
                            headers={"X-Subscription-Token": "k"}) as response:
            assert response.status == 422
        async with http.get(f"{sim.url}/searxng/search", params={"q": "x"}) as response:
            assert response.status == 403  # format=json is what an instance must enable
    exa = [r["url"] for r in await _exa(sim, "tide tables", 10)]
    assert [r["url"] for r in brave["web"]["results"]] == exa[:3]
    assert [r["url"] for r in searxng["results"]] == exa  # one page, whatever was asked
    assert "<strong>tide tables</strong>" in brave["web"]["results"][0]["description"]
    assert "tide tables" in searxng["results"][0]["content"]


async def _exa(sim: SimServer, query: str, count: int) -> list[dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.post(
            f"{sim.url}/exa/search", json={"query": query, "numResults": count},
            headers={"x-api-key": "k"}) as response:
        found: list[dict[str, str]] = (await response.json())["results"]
    return found
