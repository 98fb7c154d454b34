"""Google Vertex AI: a publisher's model under a project and region, in that publisher's own format.

The provider's base URL is `https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/
{region}`, and an endpoint's upstream id is `publisher/model` (Vertex AI reference, "Model Garden" and
"publishers.models"). Each publisher's models speak a format another adapter already translates:

  * `google/…` — Gemini: `…/publishers/google/models/{model}:generateContent`, or
    `:streamGenerateContent?alt=sse`; the body, reply, stream and errors are the Gemini API's (the adapter
    of `providers/gemini`).
  * `anthropic/…` — Claude ("Use Anthropic's Claude models" in the Vertex AI docs):
    `…/publishers/anthropic/models/{model}:rawPredict`, or `:streamRawPredict`, with Anthropic's Messages
    body less `model` (it is in the URL) and with `anthropic_version: "vertex-2023-10-16"` in the body
    rather than a header; the reply and its server-sent events are Anthropic's (`providers/anthropic_messages`).
  * any other publisher (Llama, Mistral, DeepSeek... as "models as a service") — the OpenAI-compatible
    endpoint `…/endpoints/openapi/chat/completions` with `publisher/model` as the body's `model`.

Vertex authenticates with an OAuth2 access token (`providers/auth/google.py`); a fixed token given as the
provider's API key is sent as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages import AnthropicMessages
from crossroads.providers.base import Adapter, Completion, StreamTranslator, UpstreamRequest
from crossroads.providers.gemini import Gemini
from crossroads.providers.openai_chat import OpenAIChat
from crossroads.schema.request import ChatRequest

WIRE_FORMAT: Final = "vertex"
ANTHROPIC_VERSION: Final = "vertex-2023-10-16"
#: Headers of the borrowed formats that carry their own API's credentials or version; Vertex takes neither.
_DROPPED: Final = frozenset({"x-goog-api-key", "x-api-key", "anthropic-version", "Authorization"})


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    """How an endpoint is reached: its publisher's adapter, the endpoint as that adapter sees it (the model
    without its publisher), and the publisher."""

    adapter: Adapter
    endpoint: Endpoint
    publisher: str


class Vertex:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = AnthropicMessages.passthrough_headers

    def __init__(self) -> None:
        self._gemini = Gemini()
        self._anthropic = AnthropicMessages()
        self._openai = OpenAIChat()
        self._targets: dict[str, _Target] = {}

    def _target(self, endpoint: Endpoint) -> _Target:
        found = self._targets.get(endpoint.key)
        if found is None:
            publisher, _, model = endpoint.upstream_model.partition("/")
            if not model:
                publisher, model = "google", publisher
            publishers: dict[str, Adapter] = {"google": self._gemini, "anthropic": self._anthropic}
            adapter = publishers.get(publisher, self._openai)
            inner = endpoint if adapter is self._openai else dataclasses.replace(endpoint, upstream_model=model)
            found = self._targets[endpoint.key] = _Target(adapter, inner, publisher)
        return found

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        target = self._target(endpoint)
        return target.adapter.supported_parameters(target.endpoint)

    def build_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        target = self._target(endpoint)
        built = target.adapter.build_request(chat, target.endpoint)
        headers = {name: value for name, value in built.headers.items() if name not in _DROPPED}
        if endpoint.provider.api_key:
            headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
        base = endpoint.provider.base_url
        model = quote(target.endpoint.upstream_model, safe="@")
        body = built.body
        if target.adapter is self._gemini:
            method = "streamGenerateContent?alt=sse" if chat.stream else "generateContent"
            url = f"{base}/publishers/google/models/{model}:{method}"
        elif target.adapter is self._anthropic:
            url = f"{base}/publishers/anthropic/models/{model}:{'streamRawPredict' if chat.stream else 'rawPredict'}"
            out: dict[str, Any] = orjson.loads(body)
            del out["model"]
            out["anthropic_version"] = ANTHROPIC_VERSION
            body = orjson.dumps(out)
        else:
            url = f"{base}/endpoints/openapi/chat/completions"
        return UpstreamRequest(url=url, headers=headers, body=body)

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        target = self._target(endpoint)
        return target.adapter.parse_response(body, target.endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        target = self._target(endpoint)
        return target.adapter.parse_error(status, body, headers, target.endpoint)

    def stream_translator(self, chat: ChatRequest, endpoint: Endpoint) -> StreamTranslator:
        target = self._target(endpoint)
        return target.adapter.stream_translator(chat, target.endpoint)


__all__ = ["ANTHROPIC_VERSION", "WIRE_FORMAT", "Vertex"]
