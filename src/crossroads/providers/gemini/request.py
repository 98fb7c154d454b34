"""Building a Gemini `generateContent` / `streamGenerateContent` request.

Gemini API reference, "Generate content" (https://ai.google.dev/api/generate-content):
`POST {base}/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for server-sent
events, authenticated with the `x-goog-api-key` header. The body is `contents`, `systemInstruction`,
`tools`, `toolConfig` and `generationConfig`; the model is named in the path only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.base import Plan, UpstreamRequest, apply_params, put
from crossroads.providers.gemini.convert import thinking_config
from crossroads.providers.gemini.messages import to_contents
from crossroads.schema.request import ChatRequest

__all__ = ["build_request", "url_for"]


def url_for(endpoint: Endpoint, stream: bool) -> str:
    """The method's URL. A base URL that already names an API version (`.../v1beta`, `.../v1`) keeps it."""
    base = endpoint.provider.base_url.rstrip("/")
    if not base.endswith(("/v1beta", "/v1")):
        base += "/v1beta"
    # The model is a path segment: escape everything, so `#`, `/` or `?` in a name cannot change the URL.
    model = quote(endpoint.upstream_model.removeprefix("models/"), safe="")
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/models/{model}:{method}"


def build_request(request: ChatRequest, endpoint: Endpoint, plan: Plan) -> UpstreamRequest:
    """`plan` holds the parameter-table rows this endpoint takes."""
    system, contents = to_contents(request.messages, endpoint.upstream_model)
    out: dict[str, Any] = {"contents": contents}
    if system is not None:
        out["systemInstruction"] = system
    # Unsupported and unknown parameters are dropped: Gemini rejects fields it does not know.
    apply_params(plan.rows, request.params, out)
    if "tools" not in out:
        out.pop("toolConfig", None)  # a calling mode without declarations is an error upstream
    if request.max_output is not None:
        put(out, "generationConfig.maxOutputTokens", request.max_output)
    if "reasoning" in plan.supported:
        max_output = request.max_output or endpoint.max_completion_tokens
        thinking = thinking_config(request.reasoning, max_output, endpoint.upstream_model)
        if thinking is not None:
            put(out, "generationConfig.thinkingConfig", thinking)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if request.stream:
        headers["Accept"] = "text/event-stream"
    if endpoint.provider.api_key:
        headers["x-goog-api-key"] = endpoint.provider.api_key
    for name, value in endpoint.provider.headers:
        headers[name] = value
    return UpstreamRequest(url=url_for(endpoint, request.stream), headers=headers, body=orjson.dumps(out))
