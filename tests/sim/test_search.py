"""The simulator's web search, in Exa's and Tavily's shapes."""

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
