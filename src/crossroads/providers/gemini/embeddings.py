"""Gemini's embeddings, `POST {base}/v1beta/models/{model}:batchEmbedContents` (as Google's SDK always calls
it on the Developer API), authenticated with `x-goog-api-key`.

Each input is one request of the batch: `{model: "models/<id>", content: {parts: [{text}]}, taskType?,
outputDimensionality?}`; the reply is `{embeddings: [{values}]}` in request order. Gemini reports no token
usage for embeddings, so the gateway estimates it. At most 100 requests go in one batch (the limit Google's
API enforces, though its reference does not state it). Token ids cannot be sent: Gemini takes text only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest, malformed
from crossroads.providers.embedding import EmbeddingBatch, Vector
from crossroads.providers.gemini.errors import parse_error
from crossroads.schema.embeddings import EmbeddingsRequest, Item

BATCH_SIZE: Final = 100
#: OpenRouter's `input_type` → Gemini's `taskType`; Gemini's own names pass as they are.
TASK_TYPES: Final[Mapping[str, str]] = {
    "search_query": "RETRIEVAL_QUERY",
    "search_document": "RETRIEVAL_DOCUMENT",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "semantic_similarity": "SEMANTIC_SIMILARITY",
    "question_answering": "QUESTION_ANSWERING",
    "fact_verification": "FACT_VERIFICATION",
    "code_retrieval_query": "CODE_RETRIEVAL_QUERY",
}


class GeminiEmbeddings:
    wire_format: str = "gemini"
    batch_size: int = BATCH_SIZE

    def build_request(self, request: EmbeddingsRequest, inputs: Sequence[Item], endpoint: Endpoint) \
            -> UpstreamRequest:
        model = "models/" + endpoint.upstream_model.removeprefix("models/")
        common: dict[str, Any] = {}
        if request.input_type is not None:
            common["taskType"] = TASK_TYPES.get(request.input_type, request.input_type.upper())
        if request.dimensions is not None:
            common["outputDimensionality"] = request.dimensions
        requests = []
        for item in inputs:
            if not isinstance(item, str):
                raise UpstreamError(400, "Gemini embeds text only, not token ids",
                                    provider=endpoint.provider.name)
            requests.append({"model": model, "content": {"parts": [{"text": item}]}, **common})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if endpoint.provider.api_key:
            headers["x-goog-api-key"] = endpoint.provider.api_key
        for name, value in endpoint.provider.headers:
            headers[name] = value
        return UpstreamRequest(url=_url(endpoint), headers=headers, body=orjson.dumps({"requests": requests}))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> EmbeddingBatch:
        try:
            embeddings = orjson.loads(body)["embeddings"]
            vectors: list[Vector] = [item["values"] for item in embeddings]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise malformed(endpoint, body) from None
        if len(vectors) != count or not all(isinstance(v, list) for v in vectors):
            raise malformed(endpoint, body)
        return EmbeddingBatch(vectors=vectors, prompt_tokens=None)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return parse_error(status, body, headers, endpoint)


def _url(endpoint: Endpoint) -> str:
    base = endpoint.provider.base_url.rstrip("/")
    if not base.endswith(("/v1beta", "/v1")):
        base += "/v1beta"
    model = quote(endpoint.upstream_model.removeprefix("models/"), safe="")
    return f"{base}/models/{model}:batchEmbedContents"


__all__ = ["BATCH_SIZE", "TASK_TYPES", "GeminiEmbeddings"]
