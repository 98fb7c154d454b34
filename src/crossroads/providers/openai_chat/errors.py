"""OpenAI-format errors: an error answer (`{"error": {"message", "type", "code"}}`, or a bare string as some
compatible servers send), and an error carried in a reply or a stream event, as an `UpstreamError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import retry_after


def parse_error(status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) -> UpstreamError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    payload = data.get("error") if isinstance(data, dict) else None
    if isinstance(payload, dict | str):
        return error_from_payload(payload, status, endpoint, retry_after(headers))
    return UpstreamError(status, "Provider returned error", provider=endpoint.provider.name,
                         raw=body[:1000].decode("utf-8", "replace") or None,
                         retry_after=retry_after(headers))


def error_from_payload(payload: Any, status: int, endpoint: Endpoint, hint: float | None = None) -> UpstreamError:
    """The error a payload describes; `hint` is the answer's `Retry-After`, in seconds."""
    if isinstance(payload, str):
        return UpstreamError(status, payload, provider=endpoint.provider.name, raw=payload, retry_after=hint)
    message = payload.get("message") if isinstance(payload, dict) else None
    code = payload.get("code") if isinstance(payload, dict) else None
    if isinstance(code, int) and 400 <= code < 600 and status == 502:
        status = code
    return UpstreamError(
        status,
        str(message or "Provider returned error"),
        provider=endpoint.provider.name,
        raw=payload,
        provider_code=str(code) if code is not None else (payload.get("type") if isinstance(payload, dict)
                                                           else None),
        retry_after=hint,
    )
