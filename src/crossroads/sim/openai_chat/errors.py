"""OpenAI's error answers: the `{"error": {"message", "type", "param", "code"}}` body, the wording of its
validation errors, and its own error for each status a `status=` directive asks for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .. import reply
from ..wire import SimError, retry_after_header, seconds

__all__ = [
    "INVALID_JSON",
    "MISSING_KEY",
    "STREAM_ERROR",
    "error_body",
    "invalid",
    "missing",
    "out_of_range",
    "status_error",
    "unsupported",
    "wrong_type",
]


def error_body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def invalid(message: str, param: str | None, code: str | None) -> SimError:
    return SimError(400, error_body(message, "invalid_request_error", param, code))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _literal(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


def missing(param: str) -> SimError:
    return invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def wrong_type(param: str, expected: str, value: Any) -> SimError:
    message = f"Invalid type for '{param}': expected {expected}, but got {_describe(value)} instead."
    return invalid(message, param, "invalid_type")


def unsupported(param: str, value: Any, supported: Sequence[str]) -> SimError:
    quoted = [f"'{item}'" for item in supported]
    listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)
    message = f"Invalid value: '{_literal(value)}'. Supported values are: {listed}."
    return invalid(message, param, "invalid_value")


def out_of_range(param: str, value: Any, bound: float, *, above: bool, integer: bool) -> SimError:
    kind = "integer" if integer else "decimal"
    where, relation = ("above maximum", "<=") if above else ("below minimum", ">=")
    message = (
        f"Invalid '{param}': {kind} {where} value. "
        f"Expected a value {relation} {_literal(bound)}, but got {_literal(value)} instead."
    )
    return invalid(message, param, f"{kind}_{'above_max' if above else 'below_min'}_value")


# Per status: (type, code, message). `{model}` and `{retry}` are filled in.
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-sim****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("invalid_request_error", "timeout", "Request timed out (simulated)."),
    409: ("invalid_request_error", None, "Conflict (simulated)."),
    413: ("invalid_request_error", None, "Request too large (simulated)."),
    422: ("invalid_request_error", None, "Unprocessable entity (simulated)."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-sim on requests per min (RPM): Limit 500, "
        "Used 500, Requested 1. Please try again in {retry}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway (simulated)."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", "timeout", "Gateway timeout (simulated)."),
}

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)

STREAM_ERROR = error_body(
    "The server had an error while processing your request. Sorry about that!", "server_error", None, None
)


def status_error(status: int, model: str, retry_after: float | None) -> SimError:
    """The answer for a `status=` directive: OpenAI's own error for that status, rate-limit headers on a 429."""
    default_type = "invalid_request_error" if status < 500 else "server_error"
    type_, code, template = _STATUS_ERRORS.get(status, (default_type, None, f"Error {status} (simulated)."))
    retry = seconds(retry_after) if retry_after is not None else "1"
    message = template.replace("{model}", model).replace("{retry}", retry)
    headers = {"x-request-id": "req_sim" + reply.alnum_id(reply.seed_of(message.encode()), 25)}
    headers.update(retry_after_header(retry_after))
    if status == 429:
        headers.update(
            {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry}s",
                "x-ratelimit-limit-tokens": "30000",
                "x-ratelimit-remaining-tokens": "29000",
                "x-ratelimit-reset-tokens": "2ms",
            }
        )
    return SimError(status, error_body(message, type_, None, code), headers)
