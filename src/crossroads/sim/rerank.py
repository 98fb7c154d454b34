"""Rerank in the providers' shapes: `POST /v1/rerank` (Jina's shape, which most rerank servers share),
`POST /v2/rerank` (Cohere's v2) and `POST /rerank` (Hugging Face Text Embeddings Inference).

A document's relevance score is the share of the query's words it contains, nudged by a hash of the pair
(so ties break the same way every time): deterministic, and a document about the query ranks above one that
is not. Authentication, behaviours and failures are the server's, as for chat; errors are OpenAI-shaped.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aiohttp import web

from .behaviour import Behaviour
from .checks import is_integer, model_in_body
from .embeddings.exchange import EmbeddingsExchange
from .openai_chat.errors import invalid
from .openai_style import OpenAIStyle
from .reply import count_tokens

_WORD = re.compile(r"\w+")


def relevance(query: str, document: str) -> float:
    words = set(_WORD.findall(query.lower()))
    found = set(_WORD.findall(document.lower()))
    share = len(words & found) / len(words) if words else 0.0
    jitter = hashlib.blake2b(f"{query}\x00{document}".encode(), digest_size=2).digest()
    return round(0.9 * share + 0.1 * int.from_bytes(jitter, "little") / 65535, 6)


class RerankFormat(OpenAIStyle):
    """`WireFormat` for one rerank shape (`shape`: "common", "cohere" or "tei")."""

    def __init__(self, shape: str) -> None:
        self.name = f"{shape}-rerank"
        self.shape = shape

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return model_in_body(body) if self.shape != "tei" else "tei"

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) \
            -> EmbeddingsExchange:
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.", None, None)
        if not model:
            raise invalid("You must provide a model parameter.", "model", None)
        query = body.get("query")
        documents = body.get("texts" if self.shape == "tei" else "documents")
        if not isinstance(query, str) or not query:
            raise invalid("'query' must be a non-empty string.", "query", None)
        if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
            raise invalid("'documents' must be a non-empty array of strings.", "documents", None)
        top = body.get("top_n")
        if top is not None and (not is_integer(top) or top < 1):
            raise invalid("'top_n' must be a positive integer.", "top_n", None)
        ranked = sorted(((i, relevance(query, d)) for i, d in enumerate(documents)), key=lambda p: -p[1])
        ranked = ranked[:top] if top else ranked
        if self.shape == "tei":
            return EmbeddingsExchange([{"index": i, "score": s} for i, s in ranked])
        results = [{"index": i, "relevance_score": s} for i, s in ranked]
        if self.shape == "cohere":
            return EmbeddingsExchange({"id": "sim-rerank", "results": results,
                                       "meta": {"billed_units": {"search_units": 1 + (len(documents) - 1) // 100}}})
        tokens = count_tokens(query) * len(documents) + sum(count_tokens(d) for d in documents)
        return EmbeddingsExchange({"model": model, "results": results, "usage": {"total_tokens": tokens}})


COMMON_RERANK = RerankFormat("common")
COHERE_RERANK = RerankFormat("cohere")
TEI_RERANK = RerankFormat("tei")

__all__ = ["COHERE_RERANK", "COMMON_RERANK", "TEI_RERANK", "RerankFormat", "relevance"]
