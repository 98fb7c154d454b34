"""`POST /api/v1/chat/completions`: OpenAI's Chat Completions wire format with OpenRouter's extras, as a
`Face` of the shared inference path (`api/inference.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from crossroads.api.inference import BearerCredentials
from crossroads.api.render import DONE, JSON, KEEPALIVE, error_response, sse
from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.providers.base import Piece
from crossroads.routing.outcome import OpenStream, Served
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest


class ChatFace(BearerCredentials):
    keepalive: bytes = KEEPALIVE
    api = "chat"
    operation = "chat"

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest:
        return parse_chat_request(body, default_model, forwarded)

    def reply(self, request: ChatRequest, served: Served, generation: Generation, charge: Charge) -> web.Response:
        completion = served.completion
        if request.reasoning.exclude:
            for choice in completion.choices:
                _hide_reasoning(choice["message"])
        usage = generation.usage
        assert usage is not None
        assert served.endpoint is not None
        body: dict[str, Any] = {
            "id": generation.id,
            "provider": served.endpoint.provider.name,
            "model": generation.model,
            "object": "chat.completion",
            "created": int(generation.started),
            "choices": completion.choices,
            "system_fingerprint": completion.extra.get("system_fingerprint"),
            "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion),
        }
        if "service_tier" in completion.extra:
            body["service_tier"] = completion.extra["service_tier"]
        return web.Response(body=orjson.dumps(body), content_type=JSON,
                            headers={"X-Generation-Id": generation.id})

    def writer(self, request: ChatRequest, generation: Generation) -> ChunkWriter:
        return ChunkWriter(generation, request.reasoning.exclude)

    def error(self, error: CrossroadsError, headers: Mapping[str, str]) -> web.Response:
        return error_response(error, dict(headers) if headers else None)


class ChunkWriter:
    """`chat.completion.chunk` events: every chunk of a stream shares its head (`id`, `provider`, `model`,
    `object`, `created`, ...), encoded once."""

    __slots__ = ("generation", "head", "hide_reasoning", "prefix")

    def __init__(self, generation: Generation, hide_reasoning: bool) -> None:
        self.generation = generation
        # `reasoning.exclude`: the model may reason, the client does not see it. Adapters that can ask the
        # provider not to return it do; this covers the rest.
        self.hide_reasoning = hide_reasoning
        self.head: dict[str, Any] = {}
        self.prefix = b""

    def start(self, stream: OpenStream) -> bytes:
        assert stream.model is not None
        assert stream.endpoint is not None
        self.head = {"id": self.generation.id, "provider": stream.endpoint.provider.name, "model": stream.model.id,
                     "object": "chat.completion.chunk", "created": int(self.generation.started),
                     **stream.translator.head_fields}
        self.prefix = _prefix(self.head)
        return b""

    def pieces(self, pieces: list[Piece]) -> bytes:
        if self.hide_reasoning:
            pieces = _without_reasoning(pieces)
        return _encode(self.prefix, pieces) if pieces else b""

    def end(self, generation: Generation, charge: Charge) -> bytes:
        usage = generation.usage
        assert usage is not None
        return sse({**self.head, "choices": [],
                    "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion)}) + DONE

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        return sse(_error_chunk(self.generation, stream, error)) + DONE


def _error_chunk(generation: Generation, stream: OpenStream | None, error: CrossroadsError) -> dict[str, Any]:
    payload = error.payload()
    metadata = {"error_type": payload["metadata"].get("error_type", "server")}
    provider_code = payload["metadata"].get("provider_code")
    if provider_code is not None and error.code < 500:
        metadata["provider_code"] = str(provider_code)
    provider = stream.endpoint.provider.name if stream and stream.endpoint else \
        payload["metadata"].get("provider_name")
    chunk: dict[str, Any] = {
        "id": generation.id,
        "object": "chat.completion.chunk",
        "created": int(generation.started),
        "model": generation.model,
        "provider": provider,
        "error": {"code": error.code, "message": payload["message"], "metadata": metadata},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                     "native_finish_reason": stream.translator.native_finish_reason if stream else None}],
    }
    if provider is None:
        del chunk["provider"]
    return chunk


def _prefix(head: dict[str, Any]) -> bytes:
    """`data: {"id":...,"created":...,` — the start every chunk of one stream shares, encoded once."""
    return b"data: " + orjson.dumps(head)[:-1] + b","


def _encode(prefix: bytes, pieces: list[Piece]) -> bytes:
    """Chunks as SSE events: the shared prefix, then each piece's own members."""
    if len(pieces) == 1:
        return prefix + orjson.dumps(pieces[0])[1:] + b"\n\n"
    return b"".join([prefix + orjson.dumps(piece)[1:] + b"\n\n" for piece in pieces])


def _hide_reasoning(message: dict[str, Any]) -> None:
    """Drop readable reasoning from a message or delta. Opaque pieces (encrypted reasoning, signatures with
    no text) stay: a provider needs them back to continue a tool loop, and they show nothing."""
    if message.get("reasoning") is not None:
        message["reasoning"] = None
    details = message.get("reasoning_details")
    if details:
        kept = [d for d in details if not d.get("text") and not d.get("summary")]
        if kept:
            message["reasoning_details"] = kept
        else:
            del message["reasoning_details"]


def _without_reasoning(pieces: list[Piece]) -> list[Piece]:
    kept: list[Piece] = []
    for piece in pieces:
        for choice in piece.get("choices", ()):
            delta = choice.get("delta")
            if delta:
                _hide_reasoning(delta)
                if delta.get("reasoning", 0) is None:
                    del delta["reasoning"]
        if any(choice.get("delta") or choice.get("finish_reason") for choice in piece.get("choices", ())) \
                or "usage" in piece:
            kept.append(piece)
    return kept


__all__ = ["ChatFace", "ChunkWriter"]
