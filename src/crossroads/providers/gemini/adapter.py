"""`Gemini`: the Gemini wire format behind the `Adapter` protocol, with each endpoint's parameter plan
(the `params.PARAMS` rows its features allow) resolved once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import Completion, Row, Unsupported, UpstreamRequest, supported
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
        # Per endpoint key: the rows the endpoint takes, and their names.
        self._plans: dict[str, tuple[Mapping[str, Row], frozenset[str]]] = {}

    def _plan(self, endpoint: Endpoint) -> tuple[Mapping[str, Row], frozenset[str]]:
        plan = self._plans.get(endpoint.key)
        if plan is None:
            names = supported(PARAMS, endpoint.features)
            rows = {k: v for k, v in PARAMS.items() if k in names and not isinstance(v, Unsupported)}
            plan = self._plans[endpoint.key] = (rows, names)
        return plan

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._plan(endpoint)[1]

    def build_request(self, request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        rows, names = self._plan(endpoint)
        return build_request(request, endpoint, rows, names)

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        return parse_response(body, endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return parse_error(status, body, headers, endpoint)

    def stream_translator(self, request: ChatRequest, endpoint: Endpoint) -> GeminiStream:
        return GeminiStream(endpoint)
