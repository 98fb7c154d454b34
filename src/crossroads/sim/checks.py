"""Request checks every wire format shares: JSON value kinds, the model a body names, bearer credentials."""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["bearer_token", "is_integer", "is_number", "model_in_body"]


def is_number(value: Any) -> bool:
    """A JSON number (booleans are not, though Python counts them as ints)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """A JSON integer (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def model_in_body(body: Any) -> str | None:
    """The `model` string of a JSON object body, or None."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def bearer_token(request: web.Request) -> str:
    """The token of an `Authorization: Bearer <token>` header, or "" when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
