"""`POST /rerank` end to end: a real gateway and the simulator answering in each rerank dialect (the common
shape, Cohere's v2, Text Embeddings Inference's), with fallbacks and exact cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, GatewayFactory

QUERY = "What is the capital of France?"
DOCUMENTS = ["Berlin is the capital of Germany.", "The capital of France is Paris.",
             "Bananas are rich in potassium."]


async def rerank(gw: Gateway, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(f"{gw.url}/rerank", json=body, headers=gw.auth) as resp:
        return resp.status, await resp.json()


def catalog(sim_url: str, dialects: list[tuple[str, str]], price: str = 'prompt = "0.05", completion = "0"') -> str:
    """Providers `p0`, `p1`... with the given (quirks, upstream model), each serving `test/rerank`."""
    lines = []
    for i, (quirks, _) in enumerate(dialects):
        lines += [f"[providers.p{i}]", f'name = "P{i}"', 'wire_format = "openai_chat"', f'base_url = "{sim_url}/v1"',
                  f'api_key_env = "P{i}_KEY"', f'quirks = "{quirks}"', ""]
    lines += ['[models."test/rerank"]', 'name = "Test reranker"', "context_length = 8192",
              'output_modalities = ["rerank"]', ""]
    for i, (_, upstream) in enumerate(dialects):
        lines += ['[[models."test/rerank".endpoints]]', f'provider = "p{i}"', f'upstream_model = "{upstream}"',
                  f"pricing = {{ {price} }}", ""]
    return "\n".join(lines)


def keys(n: int) -> dict[str, str]:
    return {f"P{i}_KEY": f"key-{i}" for i in range(n)}


async def test_the_simulator_ranks_the_relevant_document_first(gateway: Gateway) -> None:
    status, reply = await rerank(gateway, {"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCUMENTS})
    assert status == 200, reply
    assert reply["id"].startswith("gen-") and reply["model"] == "cohere/rerank-v3.5"
    assert reply["provider"] == "Simulator"
    assert reply["results"][0]["index"] == 1
    assert reply["results"][0]["document"] == {"text": DOCUMENTS[1]}
    scores = [r["relevance_score"] for r in reply["results"]]
    assert scores == sorted(scores, reverse=True)
    assert reply["usage"]["cost"] == 0.002  # one search at Cohere's price


@pytest.mark.parametrize("quirks", ["generic", "cohere", "tei", "voyage"])
async def test_each_dialect(start_gateway: GatewayFactory, sim: object, quirks: str) -> None:
    url = sim.url  # type: ignore[attr-defined]
    async with start_gateway(env=keys(1), catalog=catalog(url, [(quirks, "rr")])) as gw:
        status, reply = await rerank(gw, {"model": "test/rerank", "query": QUERY, "documents": DOCUMENTS,
                                          "top_n": 2, "return_documents": False})
    assert status == 200, reply
    assert [r["index"] for r in reply["results"]][:1] == [1] and len(reply["results"]) == 2
    assert "document" not in reply["results"][0]
    paths = {r.path for r in sim.requests}  # type: ignore[attr-defined]
    assert paths == {{"cohere": "/v2/rerank", "tei": "/rerank"}.get(quirks, "/v1/rerank")}


async def test_exact_cost_and_fallback(start_gateway: GatewayFactory, sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    toml = catalog(url, [("generic", "rr#status=500"), ("generic", "rr")])
    async with start_gateway(env=keys(2), catalog=toml) as gw:
        status, reply = await rerank(gw, {"model": "test/rerank", "query": QUERY, "documents": DOCUMENTS,
                                          "provider": {"order": ["p0", "p1"]}})
        record = gw.services.ledger.recent(reply["id"])
        async with aiohttp.ClientSession() as http, \
                http.get(f"{gw.url}/generation", params={"id": reply["id"]}, headers=gw.auth) as resp:
            assert (await resp.json())["data"]["api_type"] == "rerank"
    assert status == 200 and reply["provider"] == "P1"
    tokens = reply["usage"]["total_tokens"]
    assert tokens > 0 and reply["usage"]["cost"] == float(Decimal("0.05") / 1_000_000 * tokens)
    assert record is not None and record.status == 200


async def test_a_chat_model_is_refused(gateway: Gateway) -> None:
    status, reply = await rerank(gateway, {"model": "openai/gpt-4o", "query": "x", "documents": ["y"]})
    assert status == 400 and "not a rerank model" in reply["error"]["message"]
    status, reply = await rerank(gateway, {"model": "cohere/rerank-v3.5", "query": "x", "documents": []})
    assert status == 400 and "documents" in reply["error"]["message"]
