"""Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and the v1 API's
`POST /openai/v1/chat/completions`, authenticated with an `api-key` header (or an Entra ID bearer token).

Azure answers a missing key with 401 and a deployment URL without `api-version` with 404 "Resource not
found"; the deployment stands for the model (the body's `model` is ignored there).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..behaviour import Behaviour
from ..checks import bearer_token, model_in_body
from ..openai_chat import OPENAI_CHAT
from ..openai_chat.render import ChatExchange
from ..wire import SimError

__all__ = ["AZURE_OPENAI", "AzureOpenAI"]


def _azure_error(status: int, code: str, message: str) -> SimError:
    return SimError(status, orjson.dumps({"error": {"code": code, "message": message}}))


class AzureOpenAI:
    name = "azure-openai"

    def authenticate(self, request: web.Request) -> None:
        if not request.headers.get("api-key", "").strip() and not bearer_token(request):
            raise _azure_error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint. "
                               "Make sure to provide a valid key for an active subscription and use a correct "
                               "regional API endpoint for your resource.")
        if "deployment" in request.match_info and not request.query.get("api-version"):
            raise _azure_error(404, "404", "Resource not found")

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return request.match_info.get("deployment") or model_in_body(body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return OPENAI_CHAT.error(status, message, param=param, code=code)

    def invalid_json(self) -> SimError:
        return OPENAI_CHAT.invalid_json()

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return OPENAI_CHAT.status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> ChatExchange:
        deployment = request.match_info.get("deployment")
        if deployment is not None and isinstance(body, dict):
            body = {**body, "model": deployment}
        return OPENAI_CHAT.prepare(request, body, model, behaviour)


AZURE_OPENAI = AzureOpenAI()
