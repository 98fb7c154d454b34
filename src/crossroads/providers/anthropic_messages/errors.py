"""Anthropic error answers → `UpstreamError`.

Anthropic API reference, "Errors": bodies are `{"type": "error", "error": {"type", "message"}, "request_id"}`
and the same object arrives as an `error` event inside a stream. Statuses: 400 invalid_request_error,
401 authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
request_too_large, 429 rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error.

529 has no meaning to OpenAI clients: it reaches them as 503 `provider_overloaded` (the provider's status
kept as `upstream_status`). 401/402/403 concern the gateway's credentials and become 502 in `UpstreamError`.
The error type is kept as `provider_code`; `retry-after` is honoured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import retry_after

#: Anthropic error type → the HTTP status Anthropic answers it with (used for in-stream `error` events).
STATUS_OF_TYPE: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
OVERLOADED: Final = 529


def upstream_error(status: int, message: str, endpoint: Endpoint, *, raw: Any = None, code: str | None = None,
                   retry: float | None = None) -> UpstreamError:
    if status == OVERLOADED:
        return UpstreamError(503, message, provider=endpoint.provider.name, raw=raw, provider_code=code,
                             retry_after=retry, error_type="provider_overloaded", upstream_status=OVERLOADED)
    return UpstreamError(status, message, provider=endpoint.provider.name, raw=raw, provider_code=code,
                         retry_after=retry)


def error_from_payload(payload: Any, default_status: int, endpoint: Endpoint,
                       retry: float | None = None) -> UpstreamError:
    """An error from the inner `error` object; its type decides the status when `default_status` is not an
    HTTP error status of its own (in-stream errors, errors inside a 200 body)."""
    if not isinstance(payload, dict):
        return upstream_error(default_status, "Provider returned error", endpoint, raw=payload, retry=retry)
    kind = payload.get("type")
    status = default_status
    if default_status == 502 and isinstance(kind, str):
        status = STATUS_OF_TYPE.get(kind, 502)
    message = payload.get("message")
    return upstream_error(status, str(message or "Provider returned error"), endpoint, raw=payload,
                          code=kind if isinstance(kind, str) else None, retry=retry)


def parse_error(status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) -> UpstreamError:
    retry = retry_after(headers)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    payload = data.get("error") if isinstance(data, dict) else None
    if isinstance(payload, dict):
        return error_from_payload(payload, status, endpoint, retry)
    return upstream_error(status, "Provider returned error", endpoint,
                          raw=body[:1000].decode("utf-8", "replace") or None, retry=retry)

