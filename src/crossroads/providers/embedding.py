"""What every embeddings adapter is, and the registry from wire format to embedder.

An embedder turns an `EmbeddingsRequest` into upstream requests for one wire format and their replies back
into vectors. Like a chat adapter it does no I/O. Inputs beyond a format's documented batch limit are split
into several upstream requests (`batches`), sent by the dispatcher and reassembled in the client's order.

A vector crosses the seam as the provider sent it: a list of floats, or the base64 of little-endian float32
values when the provider was asked for that (OpenAI-compatible servers), either as Python values or as the
JSON text the provider wrote (`msgspec.Raw`, which an embedder may keep to spare decoding and re-encoding
thousands of numbers): the API converts only when the client asked for the other form.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import msgspec

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest
from crossroads.schema.embeddings import EmbeddingsRequest, Item

#: One embedding: floats, base64 of little-endian float32, or the JSON text of either (an array or a string).
Vector = list[float] | str | msgspec.Raw

_QUOTE = ord('"')
#: How the gateway's embeddings reply opens, and each of its `data` elements up to the vector. An
#: OpenAI-format reply made of exactly these is passed on as it came (`EmbeddingBatch.listing`).
LIST_OPEN: Final = b'{"object":"list","data":['


def element_open(index: int) -> bytes:
    return b'{"object":"embedding","index":%d,"embedding":' % index


@dataclass(slots=True)
class EmbeddingBatch:
    """One upstream reply: a vector per input sent, in the order sent; prompt tokens if reported."""

    vectors: list[Vector]
    prompt_tokens: int | None
    upstream_id: str | None = None
    #: The reply's `data` elements as JSON text, where the provider wrote them byte for byte as the gateway
    #: writes its own (OpenAI's compact form, base64 vectors, indices from 0): spliced into the reply as
    #: they are when the client asked for base64.
    listing: memoryview | None = None


class Embedder(Protocol):
    @property
    def wire_format(self) -> str: ...

    @property
    def batch_size(self) -> int:
        """The most inputs one upstream request may carry (the provider's documented limit)."""
        ...

    def build_request(self, request: EmbeddingsRequest, inputs: Sequence[Item], endpoint: Endpoint) \
            -> UpstreamRequest: ...

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> EmbeddingBatch:
        """The reply to a request for `count` inputs; a malformed one (or one with another count) raises."""
        ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError: ...


def batches(inputs: Sequence[Item], size: int) -> list[Sequence[Item]]:
    return [inputs[start:start + size] for start in range(0, len(inputs), size)]


_LITTLE: bool = sys.byteorder == "little"


def is_text(raw: msgspec.Raw) -> bool:
    """The raw JSON is a string (base64), not an array of numbers."""
    return memoryview(raw)[0] == _QUOTE


def to_base64(vector: Vector) -> str | msgspec.Raw:
    if isinstance(vector, msgspec.Raw):
        if is_text(vector):
            return vector
        vector = msgspec.json.decode(vector, type=list[float])
    if isinstance(vector, str):
        return vector
    floats = array("f", vector)
    if not _LITTLE:
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode("ascii")


def to_floats(vector: Vector) -> list[float] | msgspec.Raw:
    if isinstance(vector, msgspec.Raw):
        if not is_text(vector):
            return vector
        vector = msgspec.json.decode(vector, type=str)
    if not isinstance(vector, str):
        return vector
    floats = array("f")
    floats.frombytes(base64.b64decode(vector))
    if not _LITTLE:
        floats.byteswap()
    return floats.tolist()


class Embedders:
    """Which embedder an endpoint speaks: its wire format's, unless its provider's quirk profile names a
    native embeddings API of its own (Cohere's v2 `/embed`, though its chat goes through the OpenAI format)."""

    def __init__(self, by_format: Mapping[str, Embedder], by_quirks: Mapping[str, Embedder]) -> None:
        self.by_format = by_format
        self.by_quirks = by_quirks

    def __contains__(self, wire_format: object) -> bool:
        return wire_format in self.by_format

    def __getitem__(self, endpoint: Endpoint) -> Embedder:
        return self.by_quirks.get(endpoint.provider.quirks) or self.by_format[endpoint.provider.wire_format]


def build_embedders() -> Embedders:
    # Imported here: the adapter modules import this module for the types above.
    from crossroads.providers.cohere_embed import CohereEmbeddings
    from crossroads.providers.gemini.embeddings import GeminiEmbeddings
    from crossroads.providers.openai_chat.embeddings import OpenAIEmbeddings

    formats: list[Embedder] = [OpenAIEmbeddings(), GeminiEmbeddings()]
    return Embedders({embedder.wire_format: embedder for embedder in formats}, {"cohere": CohereEmbeddings()})


__all__ = ["LIST_OPEN", "Embedder", "EmbeddingBatch", "Vector", "batches", "build_embedders", "element_open", "is_text",
           "to_base64", "to_floats"]
