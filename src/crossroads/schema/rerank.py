"""The `POST /rerank` request, OpenRouter's shape: `model`, `query`, `documents` (strings, or `{text}`
objects), `top_n`, `return_documents`, with `provider` preferences and `models` fallbacks, parsed once into a
frozen `RerankRequest`. Routing, limits and accounting read `RerankRequest.route`, the typed `ChatRequest`
they read for every inference request (the query and documents' size as its prompt)."""

from __future__ import annotations

from typing import Any, Final

from msgspec import Struct

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import PROVIDER_PREFERENCES
from crossroads.schema.fields import INT32_MAX, Check, Integer, ListOf, String, boolean
from crossroads.schema.request import ChatRequest
from crossroads.schema.routed import checked_fields, routing_view

#: The most documents one request may rank (Cohere's recommended limit per call).
MAX_DOCUMENTS: Final = 1000

PARAMETERS: Final[dict[str, Check]] = {
    "model": String(min_length=1),
    "models": ListOf(String(min_length=1)),
    "query": String(min_length=1),
    "top_n": Integer(1, INT32_MAX),
    "return_documents": boolean,
    "provider": PROVIDER_PREFERENCES,
    "user": String(max_length=256),
    "session_id": String(max_length=256),
}


class RerankRequest(Struct, frozen=True):
    query: str
    documents: tuple[str, ...]
    top_n: int | None
    return_documents: bool
    #: The request as routing, limits and accounting see it.
    route: ChatRequest

    @property
    def models(self) -> tuple[str, ...]:
        return self.route.models


def parse_rerank_request(body: Any) -> RerankRequest:
    fields = checked_fields(body, PARAMETERS)
    if "query" not in fields:
        raise InvalidParameter("query", "is required")
    documents = _documents(body.get("documents"))
    chars = len(fields["query"]) * len(documents) + sum(map(len, documents))
    return RerankRequest(query=fields["query"], documents=documents, top_n=fields.get("top_n"),
                         return_documents=fields.get("return_documents", True), route=routing_view(fields, chars))


def _documents(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidParameter("documents", "expected a non-empty array")
    if len(value) > MAX_DOCUMENTS:
        raise InvalidParameter("documents", f"at most {MAX_DOCUMENTS} documents per request")
    out = []
    for i, item in enumerate(value):
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise InvalidParameter(f"documents[{i}]", "expected a string or an object with `text` "
                                                      "(image documents are not supported)")
        out.append(text)
    return tuple(out)


__all__ = ["MAX_DOCUMENTS", "RerankRequest", "parse_rerank_request"]
