"""The Anthropic Messages body as Bedrock and Vertex take it: the model in the URL rather than the body, and a
version field naming the cloud's flavour of the API rather than an `anthropic-version` header."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..anthropic_messages.errors import extra, invalid, required
from ..anthropic_messages.render import MessagesExchange
from ..anthropic_messages.validate import check_request
from ..behaviour import Behaviour

__all__ = ["prepare_messages"]


def prepare_messages(request: web.Request, body: Any, model: str | None, behaviour: Behaviour, *, version: str,
                     stream: bool | None, serial: int) -> MessagesExchange:
    """Check the cloud's version field and the absent `model`, then the rest as Anthropic's own API would.
    `stream` is what the URL says (Bedrock), or None when the body says it (Vertex)."""
    if not isinstance(body, dict):
        raise invalid("Malformed input request: expected an object")
    if "anthropic_version" not in body:
        raise required("anthropic_version")
    if body["anthropic_version"] != version:
        raise invalid(f"anthropic_version: expected {version!r}")
    if "model" in body:
        raise extra("model")
    if stream is not None and "stream" in body:
        raise extra("stream")
    messages = {key: value for key, value in body.items() if key not in ("anthropic_version", "anthropic_beta")}
    messages["model"] = model
    if stream:
        messages["stream"] = True
    return MessagesExchange(check_request(request, messages, model), behaviour, serial)
