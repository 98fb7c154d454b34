"""OpenAI-format embeddings replies: vectors kept as the provider's JSON text, converted only on request, and
malformed replies refused."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.embedding import to_base64, to_floats
from crossroads.providers.openai_chat.embeddings import OpenAIEmbeddings

EMBEDDER = OpenAIEmbeddings()
FLOATS = [0.5, -0.25, 0.125]
PACKED = base64.b64encode(struct.pack("<3f", *FLOATS)).decode("ascii")


def endpoint() -> Endpoint:
    provider = Provider(slug="p", name="P", wire_format="openai_chat", base_url="https://api.example.com/v1",
                        api_key="secret", quirks="generic", data_policy=DataPolicy())
    return Endpoint(model_id="a/e", provider=provider, tag="p/e", upstream_model="e", context_length=8192,
                    max_completion_tokens=None, max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal("0.0000001"), completion=Decimal(0)),
                    features=Features(), input_modalities=frozenset({"text"}))


def reply(*vectors: Any, usage: Any = None, **extra: Any) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    body: dict[str, Any] = {"object": "list", "model": "e", **extra, "data": data}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def test_float_vectors_pass_through_as_sent_and_convert_to_base64() -> None:
    batch = EMBEDDER.parse_response(reply(FLOATS, [1, 2, 3], usage={"prompt_tokens": 4, "total_tokens": 4},
                                          id="emb-1"), 2, endpoint())
    assert batch.prompt_tokens == 4 and batch.upstream_id == "emb-1"
    first = batch.vectors[0]
    assert isinstance(first, msgspec.Raw) and bytes(first) == b"[0.5,-0.25,0.125]"
    assert to_floats(first) is first
    assert to_base64(first) == PACKED
    assert orjson.loads(msgspec.json.encode({"embedding": to_floats(batch.vectors[1])})) == {"embedding": [1, 2, 3]}


def test_base64_vectors_pass_through_as_sent_and_convert_to_floats() -> None:
    batch = EMBEDDER.parse_response(reply(PACKED, usage={"total_tokens": 2}), 1, endpoint())
    vector = batch.vectors[0]
    assert batch.prompt_tokens == 2
    assert to_base64(vector) is vector
    assert to_floats(vector) == FLOATS
    assert orjson.loads(msgspec.json.encode([to_base64(vector)])) == [PACKED]


def test_vectors_come_back_in_the_order_of_their_index() -> None:
    body = orjson.dumps({"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]})
    batch = EMBEDDER.parse_response(body, 2, endpoint())
    assert [bytes(v) for v in batch.vectors] == [b"[1.0]", b"[2.0]"]  # type: ignore[arg-type]
    assert batch.prompt_tokens is None and batch.upstream_id is None


def test_plain_values_convert_as_before() -> None:
    assert to_base64(FLOATS) == PACKED and to_floats(PACKED) == FLOATS
    assert to_floats(FLOATS) is FLOATS and to_base64(PACKED) is PACKED


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"object": "list"}',
    b'{"data": {"embedding": [1]}}',
    reply({"values": [1]}),
    reply(7),
    reply([1.0], [2.0]),  # two vectors for one input
    orjson.dumps({"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}),
    orjson.dumps({"data": [{"index": -1, "embedding": [1]}]}),
    reply([1.0], usage={"prompt_tokens": "4"}),
    reply(),  # no vector for the input sent
])
def test_a_malformed_reply_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        EMBEDDER.parse_response(body, 1, endpoint())


def test_a_non_string_id_is_dropped() -> None:
    assert EMBEDDER.parse_response(reply([1.0], id=12), 1, endpoint()).upstream_id is None



def compact(*vectors: str, usage: Any = None, **extra: Any) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    body: dict[str, Any] = {"object": "list", "data": data, **extra}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


OTHER = base64.b64encode(struct.pack("<3f", 1.0, 2.0, 3.0)).decode("ascii")


@pytest.mark.parametrize("body", [
    compact(PACKED, OTHER, usage={"prompt_tokens": 4, "total_tokens": 4}, model="e", id="emb-1"),
    compact(PACKED, OTHER),
    compact(PACKED, OTHER, usage={"total_tokens": 4}, id="emb-1", model="e"),
])
def test_openais_compact_base64_reply_is_read_as_the_full_parse_reads_it(body: bytes) -> None:
    batch = EMBEDDER.parse_response(body, 2, endpoint())
    whole = orjson.loads(body)
    assert batch.listing is not None
    assert orjson.loads(b"[" + bytes(batch.listing) + b"]") == whole["data"]
    assert [bytes(v) for v in batch.vectors] == [orjson.dumps(PACKED), orjson.dumps(OTHER)]  # type: ignore[arg-type]
    assert batch.prompt_tokens == (whole["usage"]["total_tokens"] if "usage" in whole else None)
    assert batch.upstream_id == whole.get("id")
    assert to_floats(batch.vectors[1]) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("body", [
    orjson.dumps(orjson.loads(compact(PACKED, OTHER)), option=orjson.OPT_INDENT_2),  # whitespace
    orjson.dumps({"object": "list", "data": [{"index": 0, "object": "embedding", "embedding": PACKED},
                                             {"index": 1, "object": "embedding", "embedding": OTHER}]}),
    compact(PACKED, OTHER).replace(b'"index":0', b'"index":2').replace(b'"index":1', b'"index":0')
    .replace(b'"index":2', b'"index":1'),  # out of order
    compact(PACKED, OTHER.replace("/", "\\/") if "/" in OTHER else OTHER + "\\u0041"),  # an escape
    compact(PACKED, OTHER, model="é"),  # not ASCII
])
def test_any_other_reply_goes_through_the_full_parse(body: bytes) -> None:
    batch = EMBEDDER.parse_response(body, 2, endpoint())
    assert batch.listing is None and len(batch.vectors) == 2


@pytest.mark.parametrize("body", [
    compact(PACKED, OTHER, PACKED),  # one vector too many
    compact(PACKED),  # one too few
    compact(PACKED, OTHER, usage={"prompt_tokens": "4"}),
    compact(PACKED, OTHER)[:-1],  # cut short
    compact(PACKED, OTHER) + b"x",
    compact(PACKED, OTHER).replace(b'"}]', b'"}],"data":[]', 1),  # a second data member
    compact(PACKED, 7),  # type: ignore[arg-type]
])
def test_a_malformed_compact_reply_is_still_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        EMBEDDER.parse_response(body, 2, endpoint())
