"""The `POST /rerank` request, OpenRouter's shape: `model`, `query`, `documents` (strings, or `{text}`
objects), `top_n`, `return_documents`, with `provider` preferences and `models` fallbacks, parsed once into a
frozen `RerankRequest`. Routing, limits and accounting read `RerankRequest.route`, the typed `ChatRequest`
they read for every inference request (the query and documents' size as its prompt)."""

from __future__ import annotations

from typing import Any, Final

from msgspec import Struct, structs

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import PROVIDER_PREFERENCES, parse_chat_request
from crossroads.schema.fields import INT32_MAX, Check, Integer, ListOf, String, boolean
from crossroads.schema.request import ChatRequest

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
_ROUTING_FIELDS: Final = ("model", "models", "provider", "user", "session_id")


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
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    fields: dict[str, Any] = {}
    for key, value in body.items():
        check = PARAMETERS.get(key)
        if value is not None and check is not None:  # fields no table knows are not sent, as on OpenRouter
            fields[key] = check(value, key)
    if "model" not in fields and not fields.get("models"):
        raise InvalidParameter("model", "is required")
    if "query" not in fields:
        raise InvalidParameter("query", "is required")
    documents = _documents(body.get("documents"))
    chars = len(fields["query"]) * len(documents) + sum(map(len, documents))
    route = parse_chat_request({**{k: fields[k] for k in _ROUTING_FIELDS if k in fields}, "prompt": ""}, "")
    return RerankRequest(query=fields["query"], documents=documents, top_n=fields.get("top_n"),
                         return_documents=fields.get("return_documents", True),
                         route=structs.replace(route, messages=[], prompt_chars=chars))


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
