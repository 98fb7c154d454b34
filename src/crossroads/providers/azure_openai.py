"""Azure OpenAI (Azure AI Foundry): OpenAI's Chat Completions format, addressed by deployment.

Azure OpenAI reference, "Chat completions - Create": `POST {base}/openai/deployments/{deployment}/chat/
completions?api-version={version}`; and the version-less v1 API, `POST {base}/openai/v1/chat/completions`
with the deployment as the body's `model`. Authenticated with the `api-key` header, or with a Microsoft
Entra ID token ("Authenticate with Microsoft Entra ID", scope `https://cognitiveservices.azure.com/.default`)
as `Authorization: Bearer`, which `providers/auth/azure.py` adds when the provider signs with its credential
chain (no key, or its `auth` option is `entra`). The catalog's upstream id of an Azure endpoint is the
deployment's name; the provider's `api_version` option picks the form (`v1` for the v1 API). Everything
else — parameters, replies, streams, errors — is the OpenAI adapter's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.auth import signs_with_chain
from crossroads.providers.base import Completion, UpstreamRequest, retry_after
from crossroads.providers.openai_chat import OpenAIChat, OpenAIStream
from crossroads.schema.request import ChatRequest

WIRE_FORMAT: Final = "azure_openai"
#: The data-plane API version used when the provider's `api_version` option is not set.
DEFAULT_API_VERSION: Final = "2024-10-21"
#: The `api_version` that selects the version-less v1 API.
V1: Final = "v1"


def url_for(endpoint: Endpoint) -> str:
    base = endpoint.provider.base_url
    version = endpoint.provider.option("api_version") or DEFAULT_API_VERSION
    if version == V1:
        return f"{base}/openai/v1/chat/completions"
    deployment = quote(endpoint.upstream_model, safe="")
    return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={quote(version, safe='')}"


class AzureOpenAI:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._openai = OpenAIChat()

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._openai.supported_parameters(endpoint)

    def build_request(self, chat: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        built = self._openai.build_request(chat, endpoint)
        headers = {name: value for name, value in built.headers.items() if name != "Authorization"}
        if endpoint.provider.api_key and not signs_with_chain(endpoint.provider):
            headers["api-key"] = endpoint.provider.api_key
        return UpstreamRequest(url=url_for(endpoint), headers=headers, body=built.body)

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        return self._openai.parse_response(body, endpoint)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        # Refusals of Azure's API gateway (a missing, expired or foreign Entra ID token, a quota) come as
        # `{"statusCode": 401, "message": "Unauthorized. Access token is missing, invalid, ..."}`, not in the
        # service's `{"error": {...}}`.
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "error" not in data and isinstance(data.get("message"), str):
            return UpstreamError(status, data["message"], provider=endpoint.provider.name, raw=data,
                                 provider_code=str(data.get("statusCode", status)), retry_after=retry_after(headers))
        return self._openai.parse_error(status, body, headers, endpoint)

    def stream_translator(self, chat: ChatRequest, endpoint: Endpoint) -> OpenAIStream:
        return self._openai.stream_translator(chat, endpoint)


__all__ = ["DEFAULT_API_VERSION", "V1", "WIRE_FORMAT", "AzureOpenAI", "url_for"]
