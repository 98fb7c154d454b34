"""`POST /api/v1/messages` and `/messages/count_tokens`: Anthropic's Messages API, as a `Face` of the shared
inference path (`api/inference.py`), so Claude Code and the Anthropic SDKs use any catalog model.

The request is read by `schema/messages.py`; an endpoint that speaks the Messages API gets the client's body
as written (`ChatRequest.native`), any other the translation. Replies come back as Anthropic `Message`s and
streams as its events (`api/messages_stream.py`); errors in Anthropic's envelope, with statuses the SDKs map
to their own exception classes. Reference: Anthropic API reference, "Messages", "Count Message tokens",
"Errors" (https://docs.anthropic.com/en/api/messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web
from msgspec import structs

from crossroads.api.body import read_json
from crossroads.api.headers import text as header_text
from crossroads.api.messages_stream import STOP_REASONS, EventWriter, content_blocks, search_blocks, usage_fields
from crossroads.api.render import JSON
from crossroads.catalog.types import Catalog, Endpoint
from crossroads.errors import CrossroadsError, InvalidParameter, UpstreamError
from crossroads.guardrails.enforce import Guardrails
from crossroads.ledger.accounting import Charge, Generation
from crossroads.ledger.keys import KeyRing
from crossroads.plugins.web import as_tool, found, query_of
from crossroads.providers.base import Adapter
from crossroads.providers.transport import Transport
from crossroads.routing.outcome import Served
from crossroads.routing.plan import Planner
from crossroads.schema.messages import parse_messages_request
from crossroads.schema.request import ChatRequest
from crossroads.settings import Settings

#: Gateway status → Anthropic error type ("Errors": HTTP errors). 402 (a credit or spend limit reached)
#: keeps its status as `billing_error`, which the Python SDK raises as `PaymentRequiredError`.
ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: Members OpenRouter's spec requires of a whole Messages reply (`BaseMessagesResult`, `AnthropicUsage`), null
#: where the reply has nothing to say. Anthropic's own replies leave most of them out; its SDKs read both.
_MESSAGE_MEMBERS: Final[Mapping[str, None]] = {"container": None, "stop_details": None}
_USAGE_MEMBERS: Final[Mapping[str, None]] = dict.fromkeys(
    ("cache_creation", "inference_geo", "output_tokens_details", "server_tool_use", "service_tier"))

#: Normalised finish reason → Anthropic `stop_reason`, for replies from endpoints of other wire formats.
_STOP_REASONS: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

#: "Streaming Messages": `ping` events may come at any time; the SDKs skip them.
PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'


#: User-Agent product names of known Messages API clients → the app name a generation records for them
#: when they send no `X-Title` (Claude Code sends `claude-cli/<version> (external, cli)`).
AGENTS: Final[Mapping[str, str]] = {"claude-cli": "Claude Code"}


def app_of_agent(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    return AGENTS.get(user_agent.partition("/")[0])


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(error: CrossroadsError) -> bytes:
    """The `error` event of a stream (the spec's `MessagesErrorEvent`)."""
    return orjson.dumps(_error_event(error))


def error_reply(error: CrossroadsError) -> bytes:
    """The body of an error answered with its HTTP status: the stream's event and `request_id`, which
    Anthropic's error responses carry and OpenRouter's spec requires (`AnthropicMessagesErrorResponse`). It is
    null, as in OpenRouter's own answers: a request here has no identifier apart from its generation's."""
    return orjson.dumps({**_error_event(error), "request_id": None})


def _error_event(error: CrossroadsError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error.code), "message": error.public_message()}}


def with_spec_members(message: Mapping[str, Any]) -> dict[str, Any]:
    """A whole reply with every member the spec requires: the message's, its usage's and its text blocks'
    (`citations`), each null unless the reply has it."""
    content = [{"citations": None, **block} if block.get("type") == "text" else block
               for block in message.get("content") or ()]
    return {**_MESSAGE_MEMBERS, **message, "content": content, "usage": {**_USAGE_MEMBERS, **message["usage"]}}


def stop_reason(native: str | None, finish: str | None) -> str | None:
    """The Messages API's own reason where the endpoint speaks it, else the normalised one mapped."""
    if native in STOP_REASONS:
        return native
    if finish is None:
        return None
    return _STOP_REASONS.get(finish, "end_turn")


class MessagesFace:
    keepalive: bytes = PING
    api = "messages"
    operation = "chat"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def credentials(self, request: web.Request) -> str | None:
        """`x-api-key` (the SDKs' `api_key`), else `Authorization: Bearer` (their `auth_token`)."""
        key = request.headers.get("x-api-key")
        return f"Bearer {key}" if key else request.headers.get("Authorization")

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest:
        request = parse_messages_request(body, default_model, forwarded)
        native = request.native
        if native is not None and native.needs:
            request = self._native_only(request, native.wire_format, native.needs)
        return request

    def _native_only(self, request: ChatRequest, wire_format: str, needs: tuple[str, ...]) -> ChatRequest:
        """A request using what only the Messages API serves goes only to endpoints that speak it."""
        speaking = {e.provider.slug for name in request.models
                    for e in getattr(self.catalog.models.get(name.split(":")[0]), "endpoints", ())
                    if e.provider.wire_format == wire_format}
        only = speaking & set(request.provider.only) if request.provider.only else speaking
        if not only:
            raise InvalidParameter("tools" if "server tools" in needs else needs[0],
                                   f"{', '.join(needs)} need a model served through the Messages API; "
                                   f"{request.model} is not")
        return structs.replace(request, provider=structs.replace(request.provider, only=tuple(sorted(only))))

    def reply(self, request: ChatRequest, served: Served, generation: Generation, charge: Charge) -> web.Response:
        native = request.native
        message = served.completion.extra.get("native")
        if native is not None and message is not None and served.endpoint is not None \
                and served.endpoint.provider.wire_format == native.wire_format:
            # The provider speaks this API: its message as it is (server tool results, citations, the stop
            # sequence...), named as the gateway names it.
            body = with_spec_members({**message, "id": generation.id, "model": generation.model})
            return web.Response(body=orjson.dumps(body), content_type=JSON, headers={"X-Generation-Id": generation.id})
        choice = served.completion.choices[0]
        usage = generation.usage
        assert usage is not None
        body = {
            "id": generation.id,
            "type": "message",
            "role": "assistant",
            "model": generation.model,
            "content": self._searches(request, served, generation, usage.web_search_requests or 0) +
            content_blocks(choice["message"]),
            "stop_reason": stop_reason(choice.get("native_finish_reason"), choice.get("finish_reason")),
            "stop_sequence": None,
            "usage": usage_fields(usage),
        }
        return web.Response(body=orjson.dumps(with_spec_members(body)), content_type=JSON,
                            headers={"X-Generation-Id": generation.id})

    @staticmethod
    def _searches(request: ChatRequest, served: Served, generation: Generation, count: int) -> list[dict[str, Any]]:
        """The searches made for the request's web search tool as Anthropic's blocks: the backend's results,
        or those the provider cited."""
        if not as_tool(request) or served.endpoint is None:
            return []
        results = found(request, served.endpoint) or served.completion.choices[0]["message"].get("annotations") or ()
        blocks: list[dict[str, Any]] = []
        for number in range(count):
            blocks += search_blocks(generation, number, query_of(request), results)
        return blocks

    def writer(self, request: ChatRequest, generation: Generation) -> EventWriter:
        return EventWriter(generation, stop_reason, error_body,
                           request.native.wire_format if request.native is not None else None, request)

    def error(self, error: CrossroadsError, headers: Mapping[str, str]) -> web.Response:
        merged = {**error.headers, **headers}
        return web.Response(body=error_reply(error), status=error.code, content_type=JSON, headers=merged or None)


class TokenCounter:
    """`POST /messages/count_tokens`: `{"input_tokens": n}` for a Messages request without `max_tokens`.

    Exact where the request's route has an endpoint whose wire format can count (its adapter has
    `count_tokens_request`: Anthropic's "Count Message tokens"), tried in the route's order. Otherwise, or
    when none answers, an estimate, the one routing uses for context lengths: about four characters a
    token over the messages, system prompt and tool definitions, and a fixed allowance per image.
    """

    def __init__(self, face: MessagesFace, settings: Settings, keys: KeyRing, planner: Planner,
                 adapters: Mapping[str, Adapter], transport: Transport, guardrails: Guardrails | None = None) \
            -> None:
        self.face = face
        self.settings = settings
        self.keys = keys
        self.planner = planner
        self.adapters = adapters
        self.transport = transport
        #: The key's guardrails hold here as on `/messages`: its models, providers, spend limit and content
        #: filters (a redacted prompt is no longer the client's body, so it is estimated, never sent).
        self.guardrails = guardrails

    async def handle(self, request: web.Request) -> web.Response:
        try:
            key = await self.keys.authenticate(self.face.credentials(request))
            body = await read_json(request, self.settings.max_body_bytes, self.settings.body_timeout)
            if isinstance(body, dict):
                body = {**body, "max_tokens": 1, "stream": False}
            beta = header_text(request.headers.get("anthropic-beta"))
            chat = self.face.parse(body, self.settings.default_model, {"anthropic-beta": beta} if beta else {})
            guard = None
            if self.guardrails is not None:
                chat, guard = self.guardrails.check(key, chat)
            route = self.planner.plan(chat, guard)
        except CrossroadsError as error:
            return self.face.error(error, {})
        tokens = await self._count(chat, route.endpoints())
        if tokens is None:
            tokens = chat.prompt_tokens_estimate() + (len(orjson.dumps(chat.tools)) // 4 if chat.tools else 0)
        return web.Response(body=orjson.dumps({"input_tokens": tokens}), content_type=JSON)

    async def _count(self, chat: ChatRequest, endpoints: Iterable[Endpoint]) -> int | None:
        for endpoint in endpoints:
            adapter = self.adapters.get(endpoint.provider.wire_format)
            # An optional capability of an adapter, not part of the `Adapter` protocol.
            build = getattr(adapter, "count_tokens_request", None)
            upstream_request = build(chat, endpoint) if build is not None else None
            if upstream_request is None:
                continue
            try:
                upstream = await self.transport.post(upstream_request, endpoint.provider)
                reply = await upstream.read()
                tokens: int | None = adapter.parse_count(reply) if upstream.status == 200 else None  # type: ignore[union-attr]
            except (UpstreamError, ValueError):
                tokens = None
            if tokens is not None:
                return tokens
        return None


__all__ = ["AGENTS", "ERROR_TYPES", "MessagesFace", "TokenCounter", "app_of_agent", "error_body", "error_reply",
           "stop_reason"]
