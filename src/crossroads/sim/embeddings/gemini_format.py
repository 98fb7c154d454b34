"""Gemini's embeddings (`POST /v1beta/models/{model}:batchEmbedContents` and `:embedContent`, also under
`/v1`): `{requests: [{model, content: {parts: [{text}]}, taskType?, outputDimensionality?}]}` (at most 100)
or one such request → `{embeddings: [{values}]}` / `{embedding: {values}}`. Like Gemini, no usage."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..behaviour import Behaviour
from ..checks import is_integer
from ..gemini import GEMINI
from ..gemini.errors import invalid
from ..wire import SimError
from .exchange import EmbeddingsExchange
from .vectors import native_dimensions, vector

MAX_BATCH = 100


class GeminiEmbeddingsFormat:
    """`WireFormat` for Gemini embeddings; authentication, model and errors are Gemini's, as for chat."""

    name = "gemini-embeddings"

    def authenticate(self, request: web.Request) -> None:
        GEMINI.authenticate(request)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return GEMINI.model_of(request, body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return GEMINI.error(status, message, param=param, code=code)

    def invalid_json(self) -> SimError:
        return GEMINI.invalid_json()

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return GEMINI.status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) \
            -> EmbeddingsExchange:
        if not isinstance(body, dict) or not model:
            raise invalid("Invalid JSON payload received.")
        if request.path.endswith(":embedContent"):
            values = _embed(model, body, "")
            return EmbeddingsExchange({"embedding": {"values": values}})
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise invalid("* BatchEmbedContentsRequest.requests: must not be empty")
        if len(requests) > MAX_BATCH:
            raise invalid(f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch")
        return EmbeddingsExchange({"embeddings": [{"values": _embed(model, one, f"requests[{i}].")}
                                                  for i, one in enumerate(requests)]})


def _embed(model: str, request: Any, where: str) -> list[float]:
    if not isinstance(request, dict):
        raise invalid(f"* BatchEmbedContentsRequest.{where}: expected an object")
    parts = (request.get("content") or {}).get("parts") if isinstance(request.get("content"), dict) else None
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* {where}content.parts: must not be empty")
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    if not text:
        raise invalid(f"* {where}content: must contain text")
    native = native_dimensions(model)
    dimensions = request.get("outputDimensionality", native)
    if not is_integer(dimensions) or not 1 <= dimensions <= native:
        raise invalid(f"* {where}outputDimensionality: must be from 1 to {native}")
    return vector(model, dimensions, text)[0]


GEMINI_EMBEDDINGS = GeminiEmbeddingsFormat()

__all__ = ["GEMINI_EMBEDDINGS", "GeminiEmbeddingsFormat"]
