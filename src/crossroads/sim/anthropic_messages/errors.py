"""Anthropic's error answers: the `{"type": "error", "error": {"type", "message"}, "request_id"}` body with its
`request-id` header, the wording of its validation errors, and its own error for each status a `status=`
directive asks for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from .. import reply
from ..wire import SimError, retry_after_header

__all__ = [
    "STREAM_ERROR",
    "answer",
    "error_body",
    "error_type",
    "expected",
    "extra",
    "invalid",
    "request_id",
    "required",
    "status_error",
]


def request_id(seed: int) -> str:
    return "req_011C" + reply.alnum_id(seed, 20)


def error_body(type_: str, message: str) -> bytes:
    identifier = request_id(reply.seed_of(message.encode()))
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}, "request_id": identifier})


def answer(status: int, type_: str, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    body = error_body(type_, message)
    return SimError(status, body, {"request-id": orjson.loads(body)["request_id"], **(headers or {})})


def invalid(message: str) -> SimError:
    return answer(400, "invalid_request_error", message)


def required(path: str) -> SimError:
    return invalid(f"{path}: Field required")


def expected(path: str, what: str) -> SimError:
    return invalid(f"{path}: Input should be {what}")


def extra(path: str) -> SimError:
    return invalid(f"{path}: Extra inputs are not permitted")


#: Per status: (error type, message). `{model}` is filled in.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
                           "Billing to upgrade or purchase credits."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization of 50 requests "
                              "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
                              "You can see the response headers for current usage. Please reduce the prompt "
                              "length or the maximum tokens requested, or try again later."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

STREAM_ERROR: Final[bytes] = orjson.dumps(
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)


def error_type(status: int) -> str:
    """The error type Anthropic names for an HTTP status."""
    return _STATUS_ERRORS.get(status, ("invalid_request_error" if status < 500 else "api_error", ""))[0]


def status_error(status: int, model: str, retry_after: float | None) -> SimError:
    """The answer for a `status=` directive: Anthropic's own error for that status, rate-limit headers on a 429."""
    default = ("invalid_request_error" if status < 500 else "api_error", f"Error {status} (simulated).")
    type_, template = _STATUS_ERRORS.get(status, default)
    headers = retry_after_header(retry_after)
    if status == 429:
        headers.update({"anthropic-ratelimit-requests-limit": "50",
                        "anthropic-ratelimit-requests-remaining": "0"})
    return answer(status, type_, template.replace("{model}", model), headers)
