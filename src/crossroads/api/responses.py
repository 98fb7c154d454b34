"""`POST /api/v1/responses`: OpenAI's Responses API (stateless, as OpenRouter serves it) as a `Face` of the
shared inference path (`api/inference.py`). The request is read into the typed chat request
(`schema/responses.py`), so every catalog model is reachable in its own provider's wire format; the reply,
the event stream (`api/responses_stream.py`) and errors are written in the Responses wire format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from crossroads.api.inference import BearerCredentials
from crossroads.api.render import JSON, KEEPALIVE
from crossroads.api.responses_output import error_object, output_items, response_object, usage_object
from crossroads.api.responses_stream import EventWriter
from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.plugins.web import as_tool, query_of
from crossroads.routing.outcome import Served
from crossroads.schema.request import ChatRequest
from crossroads.schema.responses import ResponsesRequest, parse_responses_request


class ResponsesFace(BearerCredentials):
    keepalive: bytes = KEEPALIVE
    api = "responses"
    operation = "chat"

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ResponsesRequest:
        return parse_responses_request(body, default_model, forwarded)

    def reply(self, request: ChatRequest, served: Served, generation: Generation, charge: Charge) -> web.Response:
        assert isinstance(request, ResponsesRequest)
        assert generation.usage is not None
        choice = served.completion.choices[0]
        searches = (generation.usage.web_search_requests or 0) if as_tool(request) else 0
        output = output_items(choice["message"], generation, request.reasoning.exclude, searches, query_of(request))
        body = response_object(request, generation, generation.model, "completed", output,
                               finish=choice.get("finish_reason"), usage=usage_object(generation.usage, charge))
        return web.Response(body=orjson.dumps(body), content_type=JSON, headers={"X-Generation-Id": generation.id})

    def writer(self, request: ChatRequest, generation: Generation) -> EventWriter:
        assert isinstance(request, ResponsesRequest)
        return EventWriter(request, generation)

    def error(self, error: CrossroadsError, headers: Mapping[str, str]) -> web.Response:
        merged = {**error.headers, **headers}
        return web.Response(body=orjson.dumps({"error": error_object(error)}), status=error.code, content_type=JSON,
                            headers=merged or None)


__all__ = ["ResponsesFace"]
