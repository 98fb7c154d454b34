"""Rerank adapters: the request and reply of each provider's rerank API, and which one an endpoint speaks.

Rerank APIs are not part of the chat wire formats, so a provider's quirk profile (`providers.<slug>.quirks`)
names its rerank dialect; a profile without one of its own speaks the common shape (`Common`) that Jina,
the simulator and most compatible servers use:

    Common  POST {base}/rerank     {model, query, documents, top_n, return_documents}
                                   → {results: [{index, relevance_score}], usage: {total_tokens}}
    Voyage  POST {base}/rerank     the same with `top_k`, answered in `data` rather than `results`
    Cohere  POST {root}/v2/rerank  {model, query, documents, top_n}
                                   → {results: [{index, relevance_score}], meta: {billed_units: {search_units}}}
    TEI     POST {root}/rerank     {query, texts} → [{index, score}]    (Hugging Face Text Embeddings Inference)

`{root}` is the base URL without its API version suffix (`/v1`, Cohere's `/compatibility/v1`). Documents
are never asked back: the API attaches the client's own text, in the order of the scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest, malformed
from crossroads.providers.openai_chat import errors
from crossroads.schema.rerank import RerankRequest


@dataclass(slots=True)
class Ranking:
    """(document index, relevance score) pairs, best first; what the provider billed, if it said."""

    scores: list[tuple[int, float]]
    tokens: int | None
    search_units: int | None = None
    upstream_id: str | None = None


class Reranker(Protocol):
    def build_request(self, request: RerankRequest, endpoint: Endpoint) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> Ranking: ...


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.provider.api_key:
        headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
    for name, value in endpoint.provider.headers:
        headers[name] = value
    return headers


def _root(endpoint: Endpoint) -> str:
    base = endpoint.provider.base_url.rstrip("/")
    for suffix in ("/compatibility/v1", "/v1", "/v2"):
        if base.endswith(suffix):
            return base.removesuffix(suffix)
    return base


def _ranking(items: Any, count: int, score: str, endpoint: Endpoint, body: bytes) -> list[tuple[int, float]]:
    try:
        scores = [(int(item["index"]), float(item[score])) for item in items]
    except (KeyError, TypeError, ValueError):
        raise malformed(endpoint, body) from None
    if any(not 0 <= index < count for index, _ in scores):
        raise malformed(endpoint, body)
    return sorted(scores, key=lambda pair: -pair[1])


def _json(body: bytes, endpoint: Endpoint) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise malformed(endpoint, body) from None


class Common:
    top_field = "top_n"

    def build_request(self, request: RerankRequest, endpoint: Endpoint) -> UpstreamRequest:
        out: dict[str, Any] = {"model": endpoint.upstream_model, "query": request.query,
                               "documents": request.documents, "return_documents": False}
        if request.top_n is not None:
            out[self.top_field] = request.top_n
        return UpstreamRequest(url=endpoint.provider.base_url.rstrip("/") + "/rerank", headers=_headers(endpoint),
                               body=orjson.dumps(out))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> Ranking:
        data = _json(body, endpoint)
        if not isinstance(data, dict):
            raise malformed(endpoint, body)
        tokens = (data.get("usage") or {}).get("total_tokens")
        # Voyage answers in `data`, the others in `results`.
        return Ranking(_ranking(data.get("results", data.get("data")), count, "relevance_score", endpoint, body),
                       tokens if isinstance(tokens, int) else None,
                       upstream_id=data.get("id") if isinstance(data.get("id"), str) else None)


class Voyage(Common):
    top_field = "top_k"


class Cohere:
    def build_request(self, request: RerankRequest, endpoint: Endpoint) -> UpstreamRequest:
        out: dict[str, Any] = {"model": endpoint.upstream_model, "query": request.query,
                               "documents": request.documents}
        if request.top_n is not None:
            out["top_n"] = request.top_n
        return UpstreamRequest(url=_root(endpoint) + "/v2/rerank", headers=_headers(endpoint), body=orjson.dumps(out))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> Ranking:
        data = _json(body, endpoint)
        if not isinstance(data, dict):
            raise malformed(endpoint, body)
        units = ((data.get("meta") or {}).get("billed_units") or {}).get("search_units")
        return Ranking(_ranking(data.get("results"), count, "relevance_score", endpoint, body), None,
                       search_units=units if isinstance(units, int) else None,
                       upstream_id=data.get("id") if isinstance(data.get("id"), str) else None)


class TEI:
    def build_request(self, request: RerankRequest, endpoint: Endpoint) -> UpstreamRequest:
        out = {"query": request.query, "texts": request.documents, "return_text": False}
        return UpstreamRequest(url=_root(endpoint) + "/rerank", headers=_headers(endpoint), body=orjson.dumps(out))

    def parse_response(self, body: bytes, count: int, endpoint: Endpoint) -> Ranking:
        return Ranking(_ranking(_json(body, endpoint), count, "score", endpoint, body), None)


COMMON: Final = Common()
#: Quirk profile → rerank dialect; every other profile speaks `Common`.
RERANKERS: Final[Mapping[str, Reranker]] = {"cohere": Cohere(), "voyage": Voyage(), "tei": TEI()}


def reranker_for(endpoint: Endpoint) -> Reranker:
    return RERANKERS.get(endpoint.provider.quirks, COMMON)


def parse_error(status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) -> UpstreamError:
    """Rerank APIs answer errors as OpenAI does (`{"error": ...}`) or with a `message`/`detail` string; either
    way the status decides what the gateway does next."""
    return errors.parse_error(status, body, headers, endpoint)


__all__ = ["COMMON", "RERANKERS", "Ranking", "Reranker", "parse_error", "reranker_for"]
