"""`POST /api/v1/completions`: OpenAI's legacy Completions format (`prompt` in, `text` out), as a `Face` of
the shared inference path (`api/inference.py`).

The request takes the chat path — routing, fallbacks, limits, cost, ledger — to any model
(`schema/completions.py`): an endpoint whose provider serves the Completions API itself gets the prompt as
written, any other gets it as one user message (the legacy `logprobs: <n>` asked for as `logprobs` with
`top_logprobs: n`). Either way the reply comes back as each choice's `text`, in a `text_completion` object
or stream. What only the Completions API does — `echo`, a `suffix`, `best_of` above `n`, several prompts,
token ids — goes only to endpoints that serve it natively, and is refused for a model that has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web
from msgspec import structs

from crossroads.api.inference import BearerCredentials
from crossroads.api.render import DONE, JSON, KEEPALIVE, error_response, sse
from crossroads.catalog.types import Catalog
from crossroads.errors import CrossroadsError, InvalidParameter
from crossroads.ledger.accounting import Charge, Generation
from crossroads.providers.base import Piece
from crossroads.providers.openai_chat import serves_completions
from crossroads.routing.outcome import OpenStream, Served
from crossroads.schema.completions import parse_completions_request
from crossroads.schema.request import ChatRequest

_OBJECT: Final = "text_completion"


class CompletionsFace(BearerCredentials):
    keepalive: bytes = KEEPALIVE
    api = "completions"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
    operation = "text_completion"

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest:
        request = parse_completions_request(body, default_model, forwarded)
        native = request.native
        if native is not None and native.needs:
            request = self._native_only(request, native.needs)
        return request

    def _native_only(self, request: ChatRequest, needs: tuple[str, ...]) -> ChatRequest:
        """A request using what only the legacy API does goes only to endpoints that serve it natively."""
        serving = {e.provider.slug for name in request.models
                   for e in getattr(self.catalog.models.get(name.split(":")[0]), "endpoints", ())
                   if serves_completions(e)}
        only = serving & set(request.provider.only) if request.provider.only else serving
        if not only:
            raise InvalidParameter(needs[0], f"{', '.join(needs)} need a model whose provider serves the "
                                             f"Completions API itself; {request.model} has none (a chat model "
                                             "gets one prompt as a user message)")
        return structs.replace(request, provider=structs.replace(request.provider, only=tuple(sorted(only))))

    def reply(self, request: ChatRequest, served: Served, generation: Generation, charge: Charge) -> web.Response:
        usage = generation.usage
        assert usage is not None
        assert served.endpoint is not None
        body = {
            "id": generation.id,
            "provider": served.endpoint.provider.name,
            "model": generation.model,
            "object": _OBJECT,
            "created": int(generation.started),
            "choices": [{"index": choice.get("index", i), "text": (choice.get("message") or {}).get("content") or "",
                         "finish_reason": choice.get("finish_reason"), "logprobs": choice.get("logprobs")}
                        for i, choice in enumerate(served.completion.choices)],
            "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion),
        }
        return web.Response(body=orjson.dumps(body), content_type=JSON,
                            headers={"X-Generation-Id": generation.id})

    def writer(self, request: ChatRequest, generation: Generation) -> TextWriter:
        return TextWriter(generation)

    def error(self, error: CrossroadsError, headers: Mapping[str, str]) -> web.Response:
        return error_response(error, dict(headers) if headers else None)


class TextWriter:
    """`text_completion` stream events: each chat piece's content deltas as `text`, then a usage event and
    `[DONE]`; a failure after the stream began ends it with an error event, as chat streams end."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        self.head: dict[str, Any] = {}

    def start(self, stream: OpenStream) -> bytes:
        assert stream.model is not None
        assert stream.endpoint is not None
        self.head = {"id": self.generation.id, "provider": stream.endpoint.provider.name, "model": stream.model.id,
                     "object": _OBJECT, "created": int(self.generation.started)}
        return b""

    def pieces(self, pieces: list[Piece]) -> bytes:
        out = []
        for piece in pieces:
            choices = []
            for choice in piece.get("choices", ()):
                text = (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason")
                if text or finish:
                    choices.append({"index": choice.get("index", 0), "text": text, "finish_reason": finish,
                                    "logprobs": choice.get("logprobs")})
            if choices:
                out.append(sse({**self.head, "choices": choices}))
        return b"".join(out)

    def end(self, generation: Generation, charge: Charge) -> bytes:
        usage = generation.usage
        assert usage is not None
        return sse({**self.head, "choices": [],
                    "usage": usage.public(charge.usd, charge.cost.prompt, charge.cost.completion)}) + DONE

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        payload = error.payload()
        head = self.head or {"id": self.generation.id, "model": self.generation.model, "object": _OBJECT,
                             "created": int(self.generation.started)}
        return sse({**head, "error": {"code": error.code, "message": payload["message"]},
                    "choices": [{"index": 0, "text": "", "finish_reason": "error", "logprobs": None}]}) + DONE


__all__ = ["CompletionsFace", "TextWriter"]
