"""The Anthropic Messages wire format (`POST /v1/messages`): Anthropic's own API.

Modules, one concern each: `params` (the parameter table), `messages` (chat messages → `system` and
alternating turns), `request` (the request and the rules tying parameters together), `response` (a reply,
usage and finish reasons), `stream` (the stream translator), `relay` (a stream relayed as it came, for a
client that speaks this API itself), `errors` (error answers).

Where a model can answer in JSON natively ("Structured outputs": `output_config.format`) is a catalog
feature: endpoints with `features.structured_outputs` get it; every other Claude endpoint gets the same
`response_format` through a forced tool, so the parameter is supported wherever tools are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages import errors, request, response
from crossroads.providers.anthropic_messages.params import PARAMS
from crossroads.providers.anthropic_messages.relay import AnthropicRelay
from crossroads.providers.anthropic_messages.stream import AnthropicStream
from crossroads.providers.base import Completion, Plans, UpstreamRequest, plan
from crossroads.schema.request import ChatRequest

WIRE_FORMAT: Final = request.WIRE_FORMAT

__all__ = ["PARAMS", "WIRE_FORMAT", "AnthropicMessages", "AnthropicStream"]


class AnthropicMessages:
    wire_format = WIRE_FORMAT
    #: OpenRouter forwards `x-anthropic-beta` to Anthropic as `anthropic-beta`; a `/messages` client sends
    #: `anthropic-beta` itself (that API reads it as `x-anthropic-beta`).
    passthrough_headers: frozenset[str] = frozenset({"x-anthropic-beta", "anthropic-beta"})

    def __init__(self) -> None:
        self._plans = Plans(lambda endpoint: plan(PARAMS, endpoint.features))

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._plans(endpoint).supported

    def build_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        return request.build(chat, endpoint, self._plans(endpoint))

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        return response.parse(body, endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return errors.parse_error(status, body, headers, endpoint)

    def count_tokens_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest | None:
        """`POST /v1/messages/count_tokens` ("Count Message tokens") for a `/messages` request."""
        return request.build_count(chat, endpoint)

    @staticmethod
    def parse_count(body: bytes) -> int | None:
        data = orjson.loads(body)
        tokens = data.get("input_tokens") if isinstance(data, dict) else None
        return tokens if isinstance(tokens, int) else None

    def stream_translator(self, chat: ChatRequest, endpoint: Endpoint) -> AnthropicStream:
        if chat.native is not None and chat.native.wire_format == WIRE_FORMAT:
            return AnthropicRelay(endpoint)  # the client speaks this API: its events go back as they came
        return AnthropicStream(endpoint, exclude_reasoning=chat.reasoning.exclude)
