"""Gemini error bodies → `UpstreamError`.

Gemini answers errors as Google APIs do (https://ai.google.dev/gemini-api/docs/troubleshooting, and the
`google.rpc.Status` JSON mapping): `{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
"details": [...]}}`. The HTTP status is kept (400 INVALID_ARGUMENT, 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED,
500 INTERNAL, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED) except where the status string says the fault is the
gateway's account rather than the request: an invalid API key (400 with `ErrorInfo.reason`
`API_KEY_INVALID`), UNAUTHENTICATED, PERMISSION_DENIED and FAILED_PRECONDITION ("User location is not
supported", billing not enabled) are treated as a refused credential, which `UpstreamError` reports as 502
so that another provider is tried. `provider_code` is the status string; a `RetryInfo.retryDelay` detail
(`"36s"`) is used when there is no `Retry-After` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import retry_after

__all__ = ["blocked_prompt", "error_from_payload", "parse_error"]

_ACCOUNT_STATUSES: Final = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "FAILED_PRECONDITION": 403}
_KEY_REASONS: Final = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
_STATUS_CODES: Final = {"INVALID_ARGUMENT": 400, "OUT_OF_RANGE": 400, "NOT_FOUND": 404, "ABORTED": 409,
                        "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500,
                        "UNKNOWN": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
                        "DEADLINE_EXCEEDED": 504}
_CONTEXT_HINTS: Final = ("exceeds the maximum number of tokens", "input token count")


def parse_error(status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) -> UpstreamError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # a `streamGenerateContent` without `alt=sse` wraps the error in an array
    payload = data.get("error") if isinstance(data, dict) else None
    hint = retry_after(headers)
    if isinstance(payload, dict):
        return error_from_payload(payload, status, endpoint, hint)
    return UpstreamError(status, "Provider returned error", provider=endpoint.provider.name,
                         raw=body[:1000].decode("utf-8", "replace") or None, retry_after=hint)


def error_from_payload(payload: Mapping[str, Any], status: int | None, endpoint: Endpoint,
                       hint: float | None = None) -> UpstreamError:
    """An error object, from an error reply (`status` is the HTTP status) or from inside a stream (None)."""
    code = payload.get("code")
    name = payload.get("status") if isinstance(payload.get("status"), str) else None
    if status is None:
        status = code if isinstance(code, int) and 400 <= code < 600 else _STATUS_CODES.get(name or "", 502)
    raw_details = payload.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reasons = {d.get("reason") for d in details if isinstance(d, dict)}
    if name in _ACCOUNT_STATUSES:
        status = _ACCOUNT_STATUSES[name]
    elif reasons & _KEY_REASONS:
        status = 401
    message = str(payload.get("message") or "Provider returned error")
    error_type = None
    if status == 400 and any(h in message.lower() for h in _CONTEXT_HINTS):
        error_type = "context_length_exceeded"
    if hint is None:
        hint = _retry_delay(details)
    return UpstreamError(status, message, provider=endpoint.provider.name, raw=dict(payload), provider_code=name,
                         retry_after=hint, error_type=error_type)


def blocked_prompt(feedback: Mapping[str, Any], endpoint: Endpoint) -> UpstreamError:
    """A prompt Gemini refused to answer (`promptFeedback.blockReason`, no candidates).

    Reported as an error rather than an empty success: OpenRouter's error vocabulary has
    `content_policy_violation` ("flagged by content filter") as a 400 (openrouter-api §8.3), an error lets
    the `models` fallback list try another model, and a client cannot mistake a refusal for an answer. (A
    403 would read as the gateway's credentials being refused, which `UpstreamError` turns into a 502.) A
    reply that *starts* and is then stopped by a filter is a normal completion with `finish_reason:
    "content_filter"` instead.
    """
    reason = str(feedback.get("blockReason") or "OTHER")
    message = f"The provider's safety filter blocked the prompt ({reason})"
    if feedback.get("blockReasonMessage"):
        message += f": {feedback['blockReasonMessage']}"
    return UpstreamError(400, message, provider=endpoint.provider.name, raw=dict(feedback), provider_code=reason,
                         error_type="content_policy_violation")



def _retry_delay(details: list[Any]) -> float | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None
