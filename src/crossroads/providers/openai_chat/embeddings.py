"""OpenAI's embeddings format, `POST {base}/embeddings`, spoken by OpenAI and by every OpenAI-compatible
server that embeds (Mistral, DeepInfra, Together, Nebius, Ollama, vLLM, Hugging Face TEI, llama.cpp,
LM Studio...).

The body is OpenAI's: `model`, `input` (strings or token ids), `dimensions`, `encoding_format`, `user`.
Vectors are asked for as base64 only from servers known to send it (the wire is a quarter the size of
decimal floats, and an OpenAI SDK client that asked for base64 gets the provider's bytes unchanged); the
others get no `encoding_format` (some refuse "float") and send floats, the format's default.

Each vector is kept as the JSON text the provider sent (`msgspec.Raw`) and written back as it came when the
client asked for the same form: 16 vectors of 1,536 decimal floats (345 KB) took 1.7 ms to turn into Python
floats and back, and take 0.45 ms checked and copied as text (one core of the benchmark machine; base64
vectors cost about the same either way, 50 µs).

A reply in OpenAI's own compact form with base64 vectors — what OpenAI's SDKs ask for by default, and byte
for byte what the gateway writes back — is read without a JSON parser walking the vectors (`_compact`):
its structure is matched exactly, element by element, each vector's end found with `bytes.find`, and its
`data` elements are handed on as one slice (`EmbeddingBatch.listing`). The vectors' text is checked to be
ASCII with no escapes in it, the characters of base64 being otherwise not looked at one by one; anything
else about the reply (another key order, whitespace, floats, an escape) goes through msgspec as before. On
the benchmark's reply (16 × 1,536, 131 KB) reading and re-writing took 46 µs through msgspec and takes 22.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest, malformed
from crossroads.providers.embedding import LIST_OPEN, EmbeddingBatch, Vector, element_open
from crossroads.providers.openai_chat import errors
from crossroads.schema.embeddings import EmbeddingsRequest, Item

#: OpenAI's documented limit on inputs per request.
BATCH_SIZE: Final = 2048
#: Quirk profiles (`providers.<slug>.quirks`) whose servers answer `encoding_format: "base64"` as OpenAI does.
BASE64_UPSTREAMS: Final = frozenset({"openai", "simulator"})


class _Item(msgspec.Struct):
    embedding: msgspec.Raw
    index: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    total_tokens: int | None = None


class _Reply(msgspec.Struct):
    data: list[_Item]
    usage: _Usage | None = None
    id: Any = None


class _Rest(msgspec.Struct):
    """A compact reply's members after `data`."""

    usage: _Usage | None = None
    id: Any = None
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # a second `data`: left to the full parse


_decode = msgspec.json.Decoder(_Reply).decode
_decode_rest = msgspec.json.Decoder(_Rest).decode
#: Each `data` element of a compact reply up to the vector's opening quote, with the comma before it (made
#: once, as replies with more elements than before come).
_ELEMENTS: list[bytes] = []
#: The first byte of a vector's JSON: an array of numbers or a base64 string.
_VECTOR_STARTS: Final = frozenset(b'["')


class OpenAIEmbeddings:
    wire_format: str = "openai_chat"
    batch_size: int = BATCH_SIZE

    def build_request(self, request: EmbeddingsRequest, inputs: Sequence[Item], endpoint: Endpoint) \
            -> UpstreamRequest:
        provider = endpoint.provider
        out: dict[str, Any] = {"model": endpoint.upstream_model, "input": inputs}
        if request.dimensions is not None:
            out["dimensions"] = request.dimensions
        if request.encoding_format == "base64" and provider.quirks in BASE64_UPSTREAMS:
            out["encoding_format"] = "base64"  # otherwise left out: floats are the format's default
        if request.input_type is not None:
            out["input_type"] = request.input_type
        if request.user is not None:
            out["user"] = request.user
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if provider.api_key:
            headers["Authorization"] = f"Bearer {provider.api_key}"
        for name, value in provider.headers:
            headers[name] = value
        return UpstreamRequest(url=provider.base_url + "/embeddings", headers=headers, body=orjson.dumps(out))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> EmbeddingBatch:
        compact = _compact(body, count)
        if compact is not None:
            return compact
        try:
            reply = _decode(body)
        except msgspec.DecodeError:
            raise malformed(endpoint, body) from None
        vectors: list[Vector | None] = [None] * count
        try:
            for position, item in enumerate(reply.data):
                index = position if item.index is None else item.index
                vector = item.embedding
                if memoryview(vector)[0] not in _VECTOR_STARTS or index < 0 or vectors[index] is not None:
                    raise ValueError(index)
                vectors[index] = vector
        except (IndexError, ValueError):
            raise malformed(endpoint, body) from None
        if any(v is None for v in vectors):
            raise malformed(endpoint, body)
        return _batch(vectors, reply.usage, reply.id)  # type: ignore[arg-type]

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return errors.parse_error(status, body, headers, endpoint)


def _compact(body: bytes, count: int) -> EmbeddingBatch | None:
    """`count` base64 vectors in OpenAI's compact form (`{"object":"list","data":[{"object":"embedding",
    "index":0,"embedding":"..."},...],...}`), indices in order; None for any other reply, which the full
    parse then reads (or refuses)."""
    if not body.startswith(LIST_OPEN) or b"\\" in body or not body.isascii():
        return None
    view = memoryview(body)
    starts, find = body.startswith, body.find
    vectors: list[Vector] = []
    position = len(LIST_OPEN)
    while len(_ELEMENTS) < count:
        _ELEMENTS.append((b"," if _ELEMENTS else b"") + element_open(len(_ELEMENTS)) + b'"')
    for index in range(count):
        element = _ELEMENTS[index]
        if not starts(element, position):
            return None
        start = position + len(element)
        end = find(b'"', start)  # no escapes in the body: the first quote ends the string
        if not starts(b'"}', end):
            return None
        vectors.append(msgspec.Raw(view[start - 1:end + 1]))
        position = end + 2
    if starts(b"],", position):
        rest = b"{" + body[position + 2:]
    elif starts(b"]}", position):
        rest = b"{" + body[position + 1:]
    else:
        return None
    try:
        reply = _decode_rest(rest)
    except msgspec.DecodeError:
        return None
    if reply.data is not msgspec.UNSET:
        return None
    return _batch(vectors, reply.usage, reply.id, view[len(LIST_OPEN):position])


def _batch(vectors: list[Vector], usage: _Usage | None, upstream_id: Any, listing: memoryview | None = None) \
        -> EmbeddingBatch:
    tokens = None if usage is None else usage.total_tokens if usage.prompt_tokens is None else usage.prompt_tokens
    return EmbeddingBatch(vectors=vectors, prompt_tokens=tokens, listing=listing,
                          upstream_id=upstream_id if isinstance(upstream_id, str) else None)


__all__ = ["BASE64_UPSTREAMS", "BATCH_SIZE", "OpenAIEmbeddings"]
