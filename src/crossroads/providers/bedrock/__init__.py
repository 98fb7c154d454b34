"""Amazon Bedrock's runtime API: Claude through InvokeModel in Anthropic's Messages format, every other model
through the Converse API (`converse.py`).

Bedrock API reference, "InvokeModel" / "InvokeModelWithResponseStream": `POST {base}/model/{modelId}/invoke`
or `/invoke-with-response-stream`, where the base is `https://bedrock-runtime.{region}.amazonaws.com` and
the model id a foundation model (`anthropic.claude-sonnet-4-20250514-v1:0`) or a cross-region inference
profile (`us.anthropic.claude-sonnet-4-20250514-v1:0`). For Claude the body is Anthropic's Messages request
less `model` and `stream`, with `anthropic_version: "bedrock-2023-05-31"` and the betas as an
`anthropic_beta` list ("Anthropic Claude Messages API" in the Bedrock user guide); the reply is Anthropic's,
and a stream carries Anthropic's events in AWS event-stream framing (`eventstream.py`). This keeps what
Converse would lose: thinking signatures, `cache_control` on any block, betas.

Requests are signed with AWS Signature Version 4 (`providers/auth/aws.py`) or, with a Bedrock API key
(`AWS_BEARER_TOKEN_BEDROCK`), carry it as a bearer token.

Other model families (Llama, Mistral, Nova, DeepSeek, gpt-oss...) go through Converse:
`POST {base}/model/{modelId}/converse` or `/converse-stream`, the same authentication, the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages import AnthropicMessages
from crossroads.providers.base import Completion, Plans, StreamTranslator, UpstreamRequest, plan
from crossroads.providers.bedrock import converse, errors
from crossroads.providers.bedrock.eventstream import InvokeStreamDecoder
from crossroads.schema.request import ChatRequest

WIRE_FORMAT: Final = "bedrock"
ANTHROPIC_VERSION: Final = "bedrock-2023-05-31"
EVENT_STREAM: Final = "application/vnd.amazon.eventstream"
#: Headers of Anthropic's own API that Bedrock takes otherwise (the version and betas go in the body).
_DROPPED: Final = frozenset({"x-api-key", "anthropic-version", "anthropic-beta"})


def is_anthropic(model: str) -> bool:
    """A Claude model id, with or without a cross-region profile's prefix (`us.`, `eu.`, `apac.`, `global.`)."""
    return model.startswith("anthropic.") or ".anthropic." in model


class Bedrock:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = AnthropicMessages.passthrough_headers

    def __init__(self) -> None:
        self._anthropic = AnthropicMessages()
        self._converse = Plans(lambda endpoint: plan(converse.PARAMS, endpoint.features))

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        if not is_anthropic(endpoint.upstream_model):
            return self._converse(endpoint).supported
        return self._anthropic.supported_parameters(endpoint)

    def build_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        if not is_anthropic(endpoint.upstream_model):
            body = converse.build_body(chat, endpoint, self._converse(endpoint))
            return self._request(endpoint, "converse-stream" if chat.stream else "converse",
                                 {"content-type": "application/json"}, chat.stream, orjson.dumps(body))
        built = self._anthropic.build_request(chat, endpoint)
        out: dict[str, Any] = orjson.loads(built.body)
        del out["model"]
        out.pop("stream", None)
        out["anthropic_version"] = ANTHROPIC_VERSION
        beta = built.headers.get("anthropic-beta")
        if beta:
            out["anthropic_beta"] = [name.strip() for name in beta.split(",") if name.strip()]
        headers = {name: value for name, value in built.headers.items() if name not in _DROPPED}
        return self._request(endpoint, "invoke-with-response-stream" if chat.stream else "invoke", headers,
                             chat.stream, orjson.dumps(out))

    @staticmethod
    def _request(endpoint: Endpoint, method: str, headers: dict[str, str], stream: bool, body: bytes) \
            -> UpstreamRequest:
        headers["accept"] = EVENT_STREAM if stream else "application/json"
        if endpoint.provider.api_key:
            headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
        for name, value in endpoint.provider.headers:
            headers[name] = value
        url = f"{endpoint.provider.base_url}/model/{quote(endpoint.upstream_model, safe='')}/{method}"
        return UpstreamRequest(url=url, headers=headers, body=body)

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        if not is_anthropic(endpoint.upstream_model):
            return converse.parse_response(body, endpoint)
        return self._anthropic.parse_response(body, endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        return errors.parse_error(status, body, headers, endpoint)

    def stream_translator(self, chat: ChatRequest, endpoint: Endpoint) -> StreamTranslator:
        if not is_anthropic(endpoint.upstream_model):
            return converse.ConverseStream(endpoint)
        translator = self._anthropic.stream_translator(chat, endpoint)
        translator.framing = InvokeStreamDecoder
        return translator


__all__ = ["ANTHROPIC_VERSION", "WIRE_FORMAT", "Bedrock", "is_anthropic"]
