"""The simulator's deterministic vectors and its embeddings and rerank endpoints, called directly."""

from __future__ import annotations

import base64
import math
import struct

import aiohttp

from crossroads.sim import SimServer
from crossroads.sim.embeddings import native_dimensions, vector
from crossroads.sim.rerank import relevance


def test_same_input_same_vector_different_inputs_differ() -> None:
    a, packed = vector("m", 64, "hello")
    assert vector("m", 64, "hello") == (a, packed)
    assert vector("m", 64, "hello!")[0] != a and vector("other", 64, "hello")[0] != a
    assert math.isclose(sum(v * v for v in a), 1.0, rel_tol=1e-5)
    assert list(struct.unpack("<64f", base64.b64decode(packed))) == a


def test_native_dimensions_by_upstream_name() -> None:
    assert native_dimensions("openai/text-embedding-3-small") == 1536
    assert native_dimensions("models/gemini-embedding-001") == 3072
    assert native_dimensions("something-else") == 1024


def test_relevance_prefers_documents_with_the_query_words() -> None:
    assert relevance("capital of France", "Paris is the capital of France") > relevance("capital of France", "Bananas")


async def test_endpoints_answer_and_honour_failure_directives(sim: SimServer) -> None:
    auth = {"Authorization": "Bearer x"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/v1/embeddings", headers=auth,
                             json={"model": "m", "input": ["a", "b"], "dimensions": 8}) as resp:
            body = await resp.json()
        assert resp.status == 200 and [len(d["embedding"]) for d in body["data"]] == [8, 8]
        async with http.post(f"{sim.url}/v1beta/models/gemini-embedding-001:embedContent",
                             headers={"x-goog-api-key": "x"},
                             json={"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4}) as resp:
            assert len((await resp.json())["embedding"]["values"]) == 4
        async with http.post(f"{sim.url}/v1/embeddings", headers=auth,
                             json={"model": "m#status=429", "input": "a"}) as resp:
            assert resp.status == 429
        async with http.post(f"{sim.url}/v1/embeddings", headers=auth,
                             json={"model": "m", "input": "a", "dimensions": 5000}) as resp:
            assert resp.status == 400
        async with http.post(f"{sim.url}/v2/rerank", headers=auth,
                             json={"model": "r", "query": "q", "documents": ["q", "z"]}) as resp:
            body = await resp.json()
        assert body["results"][0]["index"] == 0 and body["meta"]["billed_units"]["search_units"] == 1
