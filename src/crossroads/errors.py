"""One error tree for everything the gateway answers with an error.

    CrossroadsError                      500 server            (message masked when rendered)
    ├── BadRequest                       400 invalid_request
    │   ├── InvalidParameter             400 invalid_request   names the offending field
    │   ├── UnknownModel                 400 invalid_request   availability.code = model_not_found
    │   └── ContextLengthExceeded        400 context_length_exceeded
    ├── Unauthorized                     401 authentication
    ├── PaymentRequired                  402 payment_required
    ├── Forbidden                        403 permission_denied
    ├── NotFound                         404 not_found
    │   └── NoEndpoints                  404 not_found         availability.code = no_endpoints / constraint_filtered
    ├── MethodNotAllowed                 405 invalid_request
    ├── RequestTimeout                   408 timeout
    ├── PayloadTooLarge                  413 payload_too_large
    ├── RateLimited                      429 rate_limit_exceeded
    ├── UpstreamError                    the upstream's status  one failed attempt at one provider
    ├── AllProvidersFailed               429 / 502 / 503       every attempt failed; carries previous_errors
    └── ServiceUnavailable               503 provider_overloaded

    ConfigError                          not an HTTP error: a bad setting or catalog file, fatal at start

Every HTTP error renders to OpenRouter's envelope `{"error": {"code", "message", "metadata"}}` with the
HTTP status equal to `code`. Exceptions from libraries (HTTP client, database, Redis) are translated into
this tree at one boundary each, with `raise ... from exc`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class ConfigError(Exception):
    """A setting, flag or catalog file is wrong. The message says which and how to fix it."""


class CrossroadsError(Exception):
    """`status` and `error_type` are each class's defaults; an instance may carry its own (`code`, `kind`)
    when the status is only known at run time (an upstream's answer, an aggregate of attempts)."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server"

    def __init__(
        self,
        message: str,
        *,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata
        self.headers = headers or {}
        self.code = self.status if code is None else code
        self.kind = kind or self.error_type

    def public_message(self) -> str:
        # An unexpected internal failure is masked: its text may carry details the caller has no business seeing.
        return "Internal Server Error" if type(self) is CrossroadsError else self.message

    def payload(self) -> dict[str, Any]:
        metadata = {"error_type": self.kind, **(self.metadata or {})}
        return {"code": self.code, "message": self.public_message(), "metadata": metadata}

    def body(self) -> bytes:
        return orjson.dumps({"error": self.payload()})


class BadRequest(CrossroadsError):
    status = 400
    error_type = "invalid_request"


class InvalidParameter(BadRequest):
    """A request field has the wrong type, is out of range, or is missing."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}", metadata={"param": param})
        self.param = param


class UnknownModel(BadRequest):
    def __init__(self, model: str, reason: str | None = None) -> None:
        super().__init__(
            reason or f"{model} is not a valid model ID",
            metadata={"availability": {"code": "model_not_found", "retryable": False,
                                       "requested_models": [model]}},
        )


class ContextLengthExceeded(BadRequest):
    error_type = "context_length_exceeded"


class Unauthorized(CrossroadsError):
    status = 401
    error_type = "authentication"


class PaymentRequired(CrossroadsError):
    status = 402
    error_type = "payment_required"


class Forbidden(CrossroadsError):
    status = 403
    error_type = "permission_denied"


class NotFound(CrossroadsError):
    status = 404
    error_type = "not_found"


class NoEndpoints(NotFound):
    """Nothing can serve the request: no configured endpoint, or every one filtered out."""


class MethodNotAllowed(CrossroadsError):
    status = 405
    error_type = "invalid_request"


class RequestTimeout(CrossroadsError):
    status = 408
    error_type = "timeout"


class PayloadTooLarge(CrossroadsError):
    status = 413
    error_type = "payload_too_large"


class RateLimited(CrossroadsError):
    status = 429
    error_type = "rate_limit_exceeded"


class ServiceUnavailable(CrossroadsError):
    status = 503
    error_type = "provider_overloaded"


_UPSTREAM_TYPES = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    502: "provider_unavailable",
    503: "provider_overloaded",
    504: "timeout",
    529: "provider_overloaded",
}


class UpstreamError(CrossroadsError):
    """One attempt at one provider failed: an HTTP error, a broken connection, a timeout, a bad reply.

    `code` is what the client would see for this failure alone: the upstream's own status for errors
    about the request (400, 404, 413, 429...), 502 for a broken or malformed reply and for a provider that
    refuses the gateway's own credentials (401/402/403 — the caller's key is fine, so answering 401 would
    mislead every client), 504 for a timeout. `upstream_status` keeps the provider's status.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        provider: str,
        raw: Any = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        self.upstream_status = status if upstream_status is None else upstream_status
        if status in (401, 402, 403):
            error_type = error_type or "provider_unavailable"
            message = f"{provider} refused the gateway's credentials (HTTP {status}): {message}"
            status = 502
        metadata: dict[str, Any] = {"provider_name": provider}
        if raw is not None:
            metadata["raw"] = raw
        if provider_code is not None:
            metadata["provider_code"] = provider_code
        headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else None
        super().__init__(message, metadata=metadata, headers=headers, code=status,
                         kind=error_type or _UPSTREAM_TYPES.get(status, "unmapped" if status < 500 else "server"))
        self.provider = provider
        self.retry_after = retry_after

    @property
    def fallback_worthy(self) -> bool:
        """Whether another endpoint may succeed where this one failed (OpenRouter: 408, 429, 5xx and
        broken replies; and 404: another provider may have the model); a 400 or 413 would fail the same
        way everywhere."""
        return self.code in (404, 408, 429) or self.code >= 500


class AllProvidersFailed(CrossroadsError):
    """Every endpoint tried failed. 429 when all were rate limits, 503 when all were transient, else the
    last failure's status; `previous_errors` lists each attempt."""

    def __init__(self, attempts: list[UpstreamError], requested_models: list[str]) -> None:
        last = attempts[-1]
        statuses = [a.upstream_status for a in attempts]
        hints = [a.retry_after for a in attempts if a.retry_after is not None]
        if all(s == 429 for s in statuses):
            status, error_type, availability = 429, "rate_limit_exceeded", "capacity_exhausted"
        elif all(s in (408, 502, 503, 504, 529) or s >= 500 for s in statuses):
            status, error_type, availability = 503, "provider_overloaded", "temporarily_unavailable"
        else:
            status, error_type, availability = last.code, last.kind, None
        metadata: dict[str, Any] = {
            "provider_name": last.provider,
            "previous_errors": [{"provider": a.provider, "code": a.kind, "status": a.upstream_status}
                                for a in attempts],
        }
        if "raw" in (last.metadata or {}):
            metadata["raw"] = (last.metadata or {})["raw"]
        headers: dict[str, str] = {}
        if availability is not None:
            info: dict[str, Any] = {"code": availability, "retryable": True, "requested_models": requested_models}
            if hints:
                info["retry_after"] = min(hints)
            metadata["availability"] = info
        if hints:
            headers["Retry-After"] = _seconds(min(hints))
        message = last.message if len(attempts) == 1 else f"All providers failed; last error: {last.message}"
        super().__init__(message, metadata=metadata, headers=headers, code=status, kind=error_type)
        self.attempts = attempts
        self.__cause__ = last


def _seconds(value: float) -> str:
    return str(max(0, int(-(-value // 1))))
