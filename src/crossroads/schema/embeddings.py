"""The `POST /embeddings` request: OpenAI's fields (`model`, `input`, `dimensions`, `encoding_format`, `user`)
with OpenRouter's `input_type`, `provider` preferences and `models` fallbacks, parsed once into a frozen
`EmbeddingsRequest`.

`input` is a string, a list of strings, a list of token ids or a list of token-id lists (OpenAI's four
forms); it is kept as a list of items either way, each a string or a list of token ids, in the client's
order. Routing, rate limits and accounting read `EmbeddingsRequest.route`: the same typed `ChatRequest` a
chat request gives them (models, provider preferences, user, the size of the input), so embeddings take
the one path every inference API takes.
"""

from __future__ import annotations

from typing import Any, Final

from msgspec import Struct

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import PROVIDER_PREFERENCES
from crossroads.schema.fields import INT32_MAX, Check, Enum, Integer, ListOf, String, string
from crossroads.schema.request import ChatRequest
from crossroads.schema.routed import checked_fields, routing_view

#: One input: text, or token ids.
Item = str | list[int]

#: OpenAI's documented limit on the number of inputs of one request.
MAX_INPUTS: Final = 2048
#: Characters a token id stands for when the input is given as tokens (the estimate routing uses).
_CHARS_PER_TOKEN: Final = 4

PARAMETERS: Final[dict[str, Check]] = {
    "model": String(min_length=1),
    "models": ListOf(String(min_length=1)),
    "dimensions": Integer(1, INT32_MAX),
    "encoding_format": Enum("float", "base64"),
    "input_type": String(min_length=1),
    "user": String(max_length=256),
    "provider": PROVIDER_PREFERENCES,
    "session_id": String(max_length=256),
}
#: The fields routing reads, passed on to the chat parser that resolves them.


class EmbeddingsRequest(Struct, frozen=True):
    """A checked embeddings request."""

    inputs: tuple[Item, ...]
    dimensions: int | None
    #: "float" or "base64" (little-endian float32, as OpenAI encodes it).
    encoding_format: str
    input_type: str | None
    #: The request as routing, limits and accounting see it (no messages; the input's size as prompt).
    route: ChatRequest

    @property
    def models(self) -> tuple[str, ...]:
        return self.route.models

    @property
    def user(self) -> str | None:
        return self.route.user


def parse_embeddings_request(body: Any) -> EmbeddingsRequest:
    """Check a decoded body and type it. `null` fields count as absent. There is no default model: an
    embedding only compares with embeddings of the same model, so the client names it."""
    fields = checked_fields(body, PARAMETERS)
    if body.get("input") is None:
        raise InvalidParameter("input", "is required")
    inputs, chars = _inputs(body["input"])
    route = routing_view(fields, chars)
    return EmbeddingsRequest(
        inputs=inputs,
        dimensions=fields.get("dimensions"),
        encoding_format=fields.get("encoding_format", "float"),
        input_type=fields.get("input_type"),
        route=route,
    )


def _inputs(value: Any) -> tuple[tuple[Item, ...], int]:
    """OpenAI's four forms of `input` → (items, characters in all; a token counts as four)."""
    if isinstance(value, str):
        return (_text(value, "input"),), len(value)
    if not isinstance(value, list) or not value:
        raise InvalidParameter("input", "expected a string or a non-empty array of strings or token ids")
    if len(value) > MAX_INPUTS:
        raise InvalidParameter("input", f"at most {MAX_INPUTS} inputs per request")
    if all(type(v) is str and v for v in value):  # the usual case: non-empty texts, checked at once
        return tuple(value), sum(map(len, value))
    if all(_is_token(v) for v in value):
        return (value,), len(value) * _CHARS_PER_TOKEN
    items: list[Item] = []
    chars = 0
    for i, item in enumerate(value):
        path = f"input[{i}]"
        if isinstance(item, str):
            items.append(_text(item, path))
            chars += len(item)
        elif isinstance(item, list) and item and all(_is_token(v) for v in item):
            items.append(item)
            chars += len(item) * _CHARS_PER_TOKEN
        else:
            raise InvalidParameter(path, "expected a non-empty string or a non-empty array of token ids")
    return tuple(items), chars


def _text(value: str, path: str) -> str:
    text: str = string(value, path)
    if not text:
        raise InvalidParameter(path, "must not be empty")
    return text


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX


__all__ = ["MAX_INPUTS", "EmbeddingsRequest", "Item", "parse_embeddings_request"]
