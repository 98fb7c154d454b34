"""`POST /embeddings` and `GET /embeddings/models` end to end through the official `openai` SDK: a real
gateway, the real simulator (OpenAI and Gemini formats), real sockets."""

from __future__ import annotations

import base64
import json
import math
import struct
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import openai
import orjson
import pytest

from crossroads.api.embeddings import _listed
from crossroads.sim.reply import count_tokens
from tests.conftest import Gateway, GatewayFactory, provider_keys, upstream_catalog

TEXTS = ["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly revenue grew by 4%."]


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)


def embedding_catalog(sim_url: str, endpoints: list[dict[str, object]], prices: str = "0.02",
                      quirks: dict[str, str] | None = None) -> str:
    toml = upstream_catalog(sim_url, {"test/embed": [{"prompt": prices, "completion": "0", **e} for e in endpoints]},
                            quirks=quirks)
    return toml.replace('name = "Test: test/embed"', 'name = "Test: test/embed"\noutput_modalities = ["embeddings"]')


@pytest.mark.parametrize("model", ["openai/text-embedding-3-small", "google/gemini-embedding-001"])
async def test_float_and_base64_decode_to_the_same_vectors(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        floats = await c.embeddings.create(model=model, input=TEXTS, encoding_format="float")
        packed = await c.embeddings.create(model=model, input=TEXTS)  # the SDK asks for base64 by default
    assert [d.index for d in floats.data] == [0, 1, 2]
    dimensions = {"openai/text-embedding-3-small": 1536, "google/gemini-embedding-001": 3072}[model]
    assert all(len(d.embedding) == dimensions for d in floats.data)
    for a, b in zip(floats.data, packed.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6, abs=1e-7)
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.model == model
    extra = floats.model_extra or {}
    assert extra["provider"] == "Simulator" and extra["id"].startswith("gen-")
    assert floats.usage.prompt_tokens > 0 and floats.usage.total_tokens == floats.usage.prompt_tokens
    assert (floats.usage.model_extra or {})["cost"] > 0


async def test_same_input_same_vector_and_dimensions_shorten_it(gateway: Gateway) -> None:
    async with client(gateway) as c:
        one = await c.embeddings.create(model="openai/text-embedding-3-small", input="hello", encoding_format="float")
        again = await c.embeddings.create(model="openai/text-embedding-3-small", input=["hello"],
                                          encoding_format="float")
        short = await c.embeddings.create(model="openai/text-embedding-3-small", input="hello", dimensions=256)
    assert one.data[0].embedding == again.data[0].embedding
    assert len(short.data[0].embedding) == 256
    assert math.isclose(sum(v * v for v in short.data[0].embedding), 1.0, rel_tol=1e-4)


async def test_token_ids_are_embedded(gateway: Gateway) -> None:
    async with client(gateway) as c:
        reply = await c.embeddings.create(model="openai/text-embedding-3-small", input=[[1, 2, 3], [4, 5]],
                                          encoding_format="float")
    assert len(reply.data) == 2 and reply.usage.prompt_tokens == 5


async def test_exact_cost_ledger_and_generation(start_gateway: GatewayFactory, sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    catalog = embedding_catalog(url, [{"provider": "alpha", "upstream_model": "text-embedding-3-small"}], "0.02")
    async with start_gateway(env=provider_keys("alpha"), catalog=catalog) as gw, client(gw) as c:
        raw = await c.embeddings.with_raw_response.create(model="test/embed", input=TEXTS, encoding_format="float")
        reply = raw.parse()
        tokens = reply.usage.prompt_tokens
        assert (reply.usage.model_extra or {})["cost"] == float(Decimal("0.02") / 1_000_000 * tokens)
        gen_id = (reply.model_extra or {})["id"]
        assert raw.headers["x-generation-id"] == gen_id
        record = gw.services.ledger.recent(gen_id)
        assert record is not None and record.model == "test/embed" and record.status == 200
        async with aiohttp.ClientSession() as http, \
                http.get(f"{gw.url}/generation", params={"id": gen_id}, headers=gw.auth) as resp:
            data = (await resp.json())["data"]
    assert data["tokens_prompt"] == tokens and data["provider_name"] == "Alpha" and data["api_type"] == "embeddings"


async def test_a_failing_endpoint_falls_back_to_the_next(start_gateway: GatewayFactory, sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    catalog = embedding_catalog(url, [
        {"provider": "alpha", "upstream_model": "text-embedding-3-small#status=500"},
        {"provider": "beta", "upstream_model": "text-embedding-3-small"},
    ])
    env = provider_keys("alpha", "beta")
    async with start_gateway(env=env, catalog=catalog) as gw, client(gw) as c:
        reply = await c.embeddings.create(model="test/embed", input=TEXTS, encoding_format="float",
                                          extra_body={"provider": {"order": ["alpha", "beta"]}})
        extra = reply.model_extra or {}
        assert extra["provider"] == "Beta" and len(reply.data) == 3
        record = gw.services.ledger.recent(extra["id"])
    assert record is not None
    assert record.trace is not None
    assert [a["status"] for a in json.loads(record.trace)] == [500, 200]


async def test_large_inputs_go_in_batches_and_come_back_in_order(gateway: Gateway) -> None:
    texts = [f"document number {i}" for i in range(230)]  # Gemini takes 100 per batch
    async with client(gateway) as c:
        whole = await c.embeddings.create(model="google/gemini-embedding-001", input=texts, dimensions=8,
                                          encoding_format="float")
        single = await c.embeddings.create(model="google/gemini-embedding-001", input=texts[150], dimensions=8,
                                           encoding_format="float")
    assert [d.index for d in whole.data] == list(range(230))
    assert whole.data[150].embedding == single.data[0].embedding
    requests = [r for r in gateway.services.simulator.requests if r.path.endswith(":batchEmbedContents")]  # type: ignore[union-attr]
    assert [len(r.body["requests"]) for r in requests[:3]] == [100, 100, 30]


async def test_a_chat_model_is_refused(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="not an embeddings model"):
            await c.embeddings.create(model="openai/gpt-4o", input="x")


async def test_bad_input_is_refused(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.BadRequestError, match="input"):
            await c.embeddings.create(model="openai/text-embedding-3-small", input=[""])


async def test_embedding_models_list(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/embeddings/models") as resp:
            listed = await resp.json()
        async with http.get(f"{gateway.url}/embeddings/models", params={"limit": 2}) as resp:
            page = await resp.json()
        async with http.get(f"{gateway.url}/models") as resp:
            chat = await resp.json()
        async with http.get(f"{gateway.url}/models/openai/text-embedding-3-small/endpoints") as resp:
            endpoints = (await resp.json())["data"]
    ids = {m["id"] for m in listed["data"]}
    assert {"openai/text-embedding-3-small", "google/gemini-embedding-001", "qwen/qwen3-embedding-8b"} <= ids
    assert all(m["architecture"]["output_modalities"] == ["embeddings"] for m in listed["data"])
    assert all(m["supported_parameters"] == [] for m in listed["data"])
    assert listed["total_count"] == len(listed["data"])
    assert page["links"]["next"] == "/api/v1/embeddings/models?offset=2&limit=2"
    assert not ids & {m["id"] for m in chat["data"]}
    assert endpoints["endpoints"][0]["pricing"]["prompt"] == "0.00000002"
    assert endpoints["endpoints"][0]["supported_parameters"] == []


async def test_cohere_native_embed(start_gateway: GatewayFactory, sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    catalog = embedding_catalog(url, [{"provider": "alpha", "upstream_model": "embed-v4.0"}], "0.12")
    catalog = catalog.replace('quirks = "generic"', 'quirks = "cohere"', 1)
    async with start_gateway(env=provider_keys("alpha"), catalog=catalog) as gw, client(gw) as c:
        reply = await c.embeddings.create(model="test/embed", input=TEXTS, dimensions=512,
                                          extra_body={"input_type": "search_query"})
        floats = await c.embeddings.create(model="test/embed", input=TEXTS[0], dimensions=512,
                                           encoding_format="float", extra_body={"input_type": "search_query"})
    assert len(reply.data) == 3 and len(reply.data[0].embedding) == 512
    assert reply.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6, abs=1e-7)
    sent = [r for r in sim.requests if r.path == "/v2/embed"]  # type: ignore[attr-defined]
    assert sent[0].body["input_type"] == "search_query" and sent[0].body["output_dimension"] == 512
    tokens = sum(count_tokens(t) for t in TEXTS)  # what the simulator bills, in meta.billed_units
    assert reply.usage.prompt_tokens == tokens
    assert (reply.usage.model_extra or {})["cost"] == float(Decimal("0.12") / 1_000_000 * tokens)


async def test_a_failed_batch_moves_the_whole_request_to_the_next_endpoint(start_gateway: GatewayFactory,
                                                                          sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    lines = []
    for slug in ("g1", "g2"):
        lines += [f"[providers.{slug}]", f'name = "{slug.upper()}"', 'wire_format = "gemini"', f'base_url = "{url}"',
                  f'api_key_env = "{slug.upper()}_KEY"', ""]
    lines += ['[models."test/gembed"]', 'name = "Test: Gemini embeddings"', "context_length = 2048",
              'output_modalities = ["embeddings"]', ""]
    for slug in ("g1", "g2"):
        lines += ['[[models."test/gembed".endpoints]]', f'provider = "{slug}"',
                  'upstream_model = "gemini-embedding-001#fail_first=1"',
                  'pricing = { prompt = "0.15", completion = "0" }', ""]
    texts = [f"passage {i}" for i in range(150)]  # two batches of Gemini's 100
    env = {"G1_KEY": "k1", "G2_KEY": "k2"}
    async with start_gateway(env=env, catalog="\n".join(lines)) as gw, client(gw) as c:
        reply = await c.embeddings.create(model="test/gembed", input=texts, dimensions=4, encoding_format="float",
                                          extra_body={"provider": {"order": ["g1", "g2"]}})
        record = gw.services.ledger.recent((reply.model_extra or {})["id"])
    # The first request to reach the simulator fails: one of g1's two batches. The attempt fails as a whole
    # (the other batch's reply, or the batch itself, is dropped) and g2 embeds all 150 inputs.
    assert (reply.model_extra or {})["provider"] == "G2" and len(reply.data) == 150
    assert [d.index for d in reply.data] == list(range(150))
    assert record is not None and record.trace is not None
    assert [a["provider"] for a in json.loads(record.trace)] == ["G1", "G2"]
    # Charged once, for every input: Gemini reports no usage, so the whole input's estimate.
    chars = sum(len(t) for t in texts)
    assert reply.usage.prompt_tokens == -(-chars // 4)
    assert (reply.usage.model_extra or {})["cost"] == float(Decimal("0.15") / 1_000_000 * reply.usage.prompt_tokens)


_FLOATS = [0.5, -0.25, 0.125]
_PACKED = base64.b64encode(struct.pack("<3f", *_FLOATS)).decode("ascii")


@pytest.mark.parametrize("encoding", ["float", "base64"])
@pytest.mark.parametrize("vectors", [
    [],
    [msgspec.Raw(b"[0.5,-0.25,0.125]"), msgspec.Raw(b'"' + _PACKED.encode() + b'"')],
    [_FLOATS, _PACKED],
])
def test_the_reply_lists_every_vector_in_the_form_asked(encoding: str, vectors: list[Any]) -> None:
    body = orjson.loads(_listed(vectors, encoding, orjson.dumps({"id": "gen-1", "model": "a/e"})))
    assert body["object"] == "list" and body["id"] == "gen-1" and body["model"] == "a/e"
    assert [item["index"] for item in body["data"]] == list(range(len(vectors)))
    assert all(item["object"] == "embedding" for item in body["data"])
    assert [item["embedding"] for item in body["data"]] == [_FLOATS if encoding == "float" else _PACKED] * len(vectors)
