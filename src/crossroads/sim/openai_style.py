"""What the simulator's OpenAI-compatible side formats (embeddings, rerank) share with its OpenAI chat
format: authentication, the model named in the body, and OpenAI-shaped error bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .checks import model_in_body
from .openai_chat import OPENAI_CHAT
from .wire import SimError


class OpenAIStyle:
    def authenticate(self, request: web.Request) -> None:
        OPENAI_CHAT.authenticate(request)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return model_in_body(body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return OPENAI_CHAT.error(status, message, param=param, code=code)

    def invalid_json(self) -> SimError:
        return OPENAI_CHAT.invalid_json()

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return OPENAI_CHAT.status_error(status, model, retry_after)
