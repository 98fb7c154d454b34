"""Google Vertex AI: Gemini at `POST /v1/projects/{project}/locations/{region}/publishers/google/models/
{model}:generateContent` (or `:streamGenerateContent`), and Claude at `…/publishers/anthropic/models/
{model}:rawPredict` (or `:streamRawPredict`) with Anthropic's body less `model`, with
`anthropic_version: "vertex-2023-10-16"`.

Vertex takes an OAuth2 access token (`Authorization: Bearer`), never an AI Studio API key; without one it
answers 401 UNAUTHENTICATED in Google's error shape.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

from ..anthropic_messages import ANTHROPIC_MESSAGES
from ..anthropic_messages.render import MessagesExchange
from ..behaviour import Behaviour
from ..checks import bearer_token
from ..gemini import GEMINI, GeminiExchange
from ..wire import SimError
from .anthropic_body import prepare_messages

__all__ = ["VERTEX_ANTHROPIC", "VERTEX_GEMINI", "VertexAnthropic", "VertexGemini"]

VERSION: Final = "vertex-2023-10-16"


def _authenticate(request: web.Request) -> None:
    if not bearer_token(request):
        raise SimError(401, orjson.dumps({"error": {
            "code": 401, "status": "UNAUTHENTICATED",
            "message": "Request is missing required authentication credential. Expected OAuth 2 access token, "
                       "login cookie or other valid authentication credential."}}))


class VertexGemini:
    name = "vertex-gemini"

    def authenticate(self, request: web.Request) -> None:
        _authenticate(request)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return GEMINI.model_of(request, body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return GEMINI.error(status, message, param=param, code=code)

    def invalid_json(self) -> SimError:
        return GEMINI.invalid_json()

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return GEMINI.status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> GeminiExchange:
        return GEMINI.prepare(request, body, model, behaviour)


class VertexAnthropic:
    name = "vertex-anthropic"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        _authenticate(request)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return request.match_info.get("model")

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return ANTHROPIC_MESSAGES.error(status, message, param=param, code=code)

    def invalid_json(self) -> SimError:
        return ANTHROPIC_MESSAGES.invalid_json()

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return ANTHROPIC_MESSAGES.status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) \
            -> MessagesExchange:
        self._serial += 1
        if request.match_info.get("method") == "streamRawPredict" and isinstance(body, dict):
            body = {**body, "stream": True}
        return prepare_messages(request, body, model, behaviour, version=VERSION, stream=None, serial=self._serial)


VERTEX_GEMINI = VertexGemini()
VERTEX_ANTHROPIC = VertexAnthropic()
