"""Bedrock's error answers → `UpstreamError`.

Bedrock runtime errors (API reference, "Common Errors" and each action's "Errors") are `{"message": "..."}`
bodies, the error's name in the `x-amzn-ErrorType` header (`ThrottlingException:http://...`): 400
ValidationException, 403 AccessDeniedException, 404 ResourceNotFoundException, 408 ModelTimeoutException,
424 ModelErrorException, 429 ThrottlingException / ServiceQuotaExceededException, 500
InternalServerException, 503 ServiceUnavailableException. The name is kept as `provider_code`.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import retry_after

#: A failed model invocation is the provider's failure, worth another provider: a 502.
_MODEL_ERROR = 424


def parse_error(status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) -> UpstreamError:
    code = headers.get("x-amzn-errortype", "").partition(":")[0] or None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    message = data.get("message") or data.get("Message") if isinstance(data, dict) else None
    raw = data if data is not None else body[:1000].decode("utf-8", "replace") or None
    return UpstreamError(502 if status == _MODEL_ERROR else status, str(message or code or "Provider returned error"),
                         provider=endpoint.provider.name, raw=raw, provider_code=code,
                         retry_after=retry_after(headers))


__all__ = ["parse_error"]
