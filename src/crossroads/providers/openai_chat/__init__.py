"""The OpenAI Chat Completions wire format: OpenAI itself and every OpenAI-compatible provider.

Modules, one concern each: `params` (the parameter table, and `QUIRKS`: one row per provider flavour, named
by the catalog's `quirks` field, with what that provider takes, renames or lacks), `request` (the request),
`response` (a reply and its usage), `stream` (the stream translator) and `errors` (error answers). Everything
else about the format is shared: the request is the client's minus gateway fields, the reply is nearly what
the client gets, and a stream needs little more than a few fields rewritten per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import Completion, Plans, UpstreamRequest
from crossroads.providers.openai_chat import completions, errors, request, response
from crossroads.providers.openai_chat.params import PARAMS, QUIRKS, Quirks, make_plan
from crossroads.providers.openai_chat.response import usage_from
from crossroads.providers.openai_chat.stream import OpenAIStream
from crossroads.schema.completions import COMPLETIONS_API
from crossroads.schema.request import ChatRequest

WIRE_FORMAT: Final = "openai_chat"

__all__ = ["PARAMS", "QUIRKS", "WIRE_FORMAT", "OpenAIChat", "OpenAIStream", "Quirks", "serves_completions",
           "usage_from"]


def serves_completions(endpoint: Endpoint) -> bool:
    """Whether the endpoint's provider serves OpenAI's legacy Completions API itself."""
    return endpoint.provider.wire_format == WIRE_FORMAT and \
        QUIRKS.get(endpoint.provider.quirks, QUIRKS["generic"]).legacy_completions


def _legacy(chat: ChatRequest, endpoint: Endpoint) -> bool:
    """A `/completions` request going to an endpoint that serves that API: sent as the client wrote it."""
    return chat.native is not None and chat.native.wire_format == COMPLETIONS_API and serves_completions(endpoint)


class OpenAIChat:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._plans = Plans(make_plan)

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._plans(endpoint).supported

    def build_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        if _legacy(chat, endpoint):
            return completions.build(chat, endpoint, self._plans(endpoint))
        return request.build(chat, endpoint, self._plans(endpoint))

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        return response.parse_response(body, endpoint)  # a legacy reply is recognised by its `object`

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return errors.parse_error(status, body, headers, endpoint)

    def stream_translator(self, chat: ChatRequest, endpoint: Endpoint) -> OpenAIStream:
        return completions.CompletionsStream(endpoint) if _legacy(chat, endpoint) else OpenAIStream(endpoint)
