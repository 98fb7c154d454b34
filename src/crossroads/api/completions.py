"""`POST /api/v1/completions`: OpenAI's legacy Completions format (`prompt` in, `text` out), as a `Face` of
the shared inference path (`api/inference.py`).

The prompt becomes one user message and the request takes the chat path — routing, fallbacks, limits,
cost, ledger — to any model; the reply's message content comes back as each choice's `text`, in a
`text_completion` object or stream. The legacy `logprobs: <n>` is asked for as `logprobs` with
`top_logprobs: n`. What a chat model cannot do with a bare prompt is refused rather than ignored:
`echo: true`, a `suffix`, `best_of` above `n`, and a prompt of several strings or of token ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from crossroads.api.inference import BearerCredentials
from crossroads.api.render import DONE, JSON, KEEPALIVE, error_response, sse
from crossroads.errors import CrossroadsError, InvalidParameter
from crossroads.ledger.accounting import Charge, Generation
from crossroads.providers.base import Piece
from crossroads.routing.outcome import OpenStream, Served
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest

_OBJECT: Final = "text_completion"


class CompletionsFace(BearerCredentials):
    keepalive: bytes = KEEPALIVE
    operation = "text_completion"

    def parse(self, body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest:
        if not isinstance(body, dict):
            raise InvalidParameter("body", "expected a JSON object")
        body = dict(body)
        if "messages" in body:
            raise InvalidParameter("messages", "is not a field of /completions; send `prompt` (or use "
                                               "/chat/completions)")
        body["prompt"] = _prompt(body.get("prompt"))
        if body.pop("echo", None):
            raise InvalidParameter("echo", "echoing the prompt is not supported")
        if body.pop("suffix", None):
            raise InvalidParameter("suffix", "a suffix (insertion) is not supported")
        best_of = body.pop("best_of", None)
        if best_of is not None and best_of != body.get("n", 1):
            raise InvalidParameter("best_of", "must equal n: choices are not ranked on the server")
        logprobs = body.get("logprobs")
        if isinstance(logprobs, int) and not isinstance(logprobs, bool):
            body["logprobs"] = True
            body["top_logprobs"] = logprobs
        return parse_chat_request(body, default_model, forwarded)

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


def _prompt(value: Any) -> str:
    """The legacy `prompt`: a string, or an array holding one string."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if value is None:
        raise InvalidParameter("prompt", "is required")
    if not isinstance(value, str):
        raise InvalidParameter("prompt", "expected a string (several prompts or token ids are not supported)")
    return value


__all__ = ["CompletionsFace", "TextWriter"]
