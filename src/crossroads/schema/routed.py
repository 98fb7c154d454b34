"""What the requests of the one-shot APIs (embeddings, rerank) share: reading their checked fields, and the
view of the request that routing, limits and accounting take (a `ChatRequest` of no messages)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from msgspec import structs

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.fields import Check
from crossroads.schema.request import ChatRequest

#: The fields that steer routing, limits and accounting.
ROUTING_FIELDS: Final = ("model", "models", "provider", "user", "session_id")


def checked_fields(body: Any, table: Mapping[str, Check]) -> dict[str, Any]:
    """The body's fields that `table` knows, each checked. `null` counts as absent; fields no table knows are
    dropped (not sent, as on OpenRouter). A model is required: there is no default one for these APIs."""
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    fields: dict[str, Any] = {}
    for key, value in body.items():
        check = table.get(key)
        if value is not None and check is not None:
            fields[key] = check(value, key)
    if "model" not in fields and not fields.get("models"):
        raise InvalidParameter("model", "is required")
    return fields


#: Views of requests that name one model and nothing else that steers routing (most of them), by model: made
#: once instead of per request (7 µs of `parse_chat_request` each). At most `_VIEWS_KEPT`, then started anew.
_VIEWS: dict[str, ChatRequest] = {}
_VIEWS_KEPT: Final = 1024


def routing_view(fields: Mapping[str, Any], prompt_chars: int) -> ChatRequest:
    """The request as routing, limits and accounting see it: its routing fields, and `prompt_chars`
    characters of input."""
    model = fields.get("model")
    plain = model if isinstance(model, str) and not any(k in fields for k in ROUTING_FIELDS[1:]) else None
    route = _VIEWS.get(plain) if plain is not None else None
    if route is None:
        route = parse_chat_request({**{k: fields[k] for k in ROUTING_FIELDS if k in fields}, "prompt": ""}, "")
        if plain is not None:
            if len(_VIEWS) >= _VIEWS_KEPT:
                _VIEWS.clear()
            _VIEWS[plain] = route
    # A view of its own: nothing a request does to its containers reaches the next one.
    return structs.replace(route, messages=[], prompt_chars=prompt_chars, params={}, extra={}, metadata={},
                           headers={})
