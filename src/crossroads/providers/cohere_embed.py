"""Cohere's native embeddings, `POST {root}/v2/embed` (Bearer key), for providers whose quirk profile is
`cohere` (their base URL is Cohere's OpenAI compatibility API; `{root}` is it without `/compatibility/v1`).

Body: `{model, texts, input_type, embedding_types: ["float"], output_dimension?}`. `input_type` is required
by Cohere: OpenRouter's value goes as it is, and `search_document` is sent when the client gave none (the
common case: embedding a corpus). Floats are asked for and the gateway encodes base64 itself, Cohere's own
base64 layout being undocumented. Reply: `{id, embeddings: {float: [[...]]}, meta: {billed_units:
{input_tokens}}}`. At most 96 texts per request; token ids cannot be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest, malformed
from crossroads.providers.embedding import EmbeddingBatch, Vector
from crossroads.providers.openai_chat import errors
from crossroads.schema.embeddings import EmbeddingsRequest, Item

BATCH_SIZE: Final = 96
DEFAULT_INPUT_TYPE: Final = "search_document"


class CohereEmbeddings:
    wire_format: str = "openai_chat"
    batch_size: int = BATCH_SIZE

    def build_request(self, request: EmbeddingsRequest, inputs: Sequence[Item], endpoint: Endpoint) \
            -> UpstreamRequest:
        if not all(isinstance(item, str) for item in inputs):
            raise UpstreamError(400, "Cohere embeds text only, not token ids", provider=endpoint.provider.name)
        out: dict[str, Any] = {"model": endpoint.upstream_model, "texts": inputs,
                               "input_type": request.input_type or DEFAULT_INPUT_TYPE, "embedding_types": ["float"]}
        if request.dimensions is not None:
            out["output_dimension"] = request.dimensions
        provider = endpoint.provider
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if provider.api_key:
            headers["Authorization"] = f"Bearer {provider.api_key}"
        root = provider.base_url.rstrip("/").removesuffix("/compatibility/v1").removesuffix("/v1")
        return UpstreamRequest(url=root + "/v2/embed", headers=headers, body=orjson.dumps(out))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> EmbeddingBatch:
        try:
            data = orjson.loads(body)
            vectors: list[Vector] = data["embeddings"]["float"]
            tokens = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise malformed(endpoint, body) from None
        if not isinstance(vectors, list) or len(vectors) != count or not all(isinstance(v, list) for v in vectors):
            raise malformed(endpoint, body)
        upstream_id = data.get("id")
        return EmbeddingBatch(vectors=vectors, prompt_tokens=tokens if isinstance(tokens, int) else None,
                              upstream_id=upstream_id if isinstance(upstream_id, str) else None)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return errors.parse_error(status, body, headers, endpoint)


__all__ = ["BATCH_SIZE", "CohereEmbeddings"]
