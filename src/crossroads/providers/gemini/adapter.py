"""`Gemini`: the Gemini wire format behind the `Adapter` protocol, with each endpoint's parameter plan
(the `params.PARAMS` rows its features allow) resolved once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import Completion, Plans, UpstreamRequest, plan
from crossroads.providers.gemini.errors import parse_error
from crossroads.providers.gemini.params import PARAMS
from crossroads.providers.gemini.request import build_request
from crossroads.providers.gemini.response import parse_response
from crossroads.providers.gemini.stream import GeminiStream
from crossroads.schema.request import ChatRequest

__all__ = ["WIRE_FORMAT", "Gemini"]

WIRE_FORMAT: Final = "gemini"


class Gemini:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._plans = Plans(lambda endpoint: plan(PARAMS, endpoint.features))

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._plans(endpoint).supported

    def build_request(self, request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        return build_request(request, endpoint, self._plans(endpoint))

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        return parse_response(body, endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return parse_error(status, body, headers, endpoint)

    def stream_translator(self, request: ChatRequest, endpoint: Endpoint) -> GeminiStream:
        return GeminiStream(endpoint)
