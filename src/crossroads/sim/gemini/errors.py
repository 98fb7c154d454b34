"""Google's error answers: the `{"error": {"code", "message", "status"}}` body, the wording of the API's
validation errors, and its own error for each status a `status=` directive asks for."""

from __future__ import annotations

from typing import Any, Final

import orjson

from ..wire import SimError, retry_after_header, seconds

__all__ = [
    "MISSING_KEY",
    "STREAM_ERROR",
    "bad_value",
    "error_body",
    "field_error",
    "invalid",
    "status_error",
    "status_name",
]

_STATUS_NAMES: Final = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                        408: "DEADLINE_EXCEEDED", 409: "ABORTED", 412: "FAILED_PRECONDITION",
                        429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
                        503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
# Per status: the message Google sends (`{model}` is filled in).
_STATUS_MESSAGES: Final = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
         "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "models/{model} is not found for API version v1beta, or is not supported for generateContent. Call "
         "ListModels to see the list of available models and their supported methods.",
    429: "You exceeded your current quota, please check your plan and billing details. For more information on "
         "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
MISSING_KEY: Final = ("Method doesn't allow unregistered callers (callers without established identity). Please use "
                      "API Key or other form of API consumer identity to call this API.")


def status_name(code: int) -> str:
    return _STATUS_NAMES.get(code, "UNKNOWN" if code >= 500 else "INVALID_ARGUMENT")


def error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status_name(code)}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def invalid(message: str) -> SimError:
    return SimError(400, error_body(400, message))


def field_error(where: str, message: str) -> SimError:
    """A validation failure, worded as the API words them: `* GenerateContentRequest.<path>: <message>`."""
    return invalid(f"* GenerateContentRequest.{where}: {message}\n")


def bad_value(where: str, kind: str, value: Any) -> SimError:
    shown = value if isinstance(value, str) else orjson.dumps(value).decode()
    return invalid(f"Invalid JSON payload received. Invalid value at '{where}' ({kind}), {shown}")


STREAM_ERROR = error_body(500, _STATUS_MESSAGES[500])


def status_error(status: int, model: str, retry_after: float | None) -> SimError:
    """The answer for a `status=` directive: Google's own error for that status, quota details on a 429."""
    message = _STATUS_MESSAGES.get(status, f"Error {status} (simulated).").replace("{model}", model)
    details: list[dict[str, Any]] = []
    if status == 429:
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
            "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "1000"}]})
        details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds(retry_after)}s"})
    headers = retry_after_header(retry_after)
    return SimError(status, error_body(status, message, details), headers)
