"""Anthropic Messages simulator: `status=` and `fail_first` answers, as the SDK's exceptions and headers expect."""

from __future__ import annotations

import anthropic
import pytest

from crossroads.sim import SimServer

from .support import MODEL, USER

STATUS_ERRORS: list[tuple[int, type[anthropic.APIStatusError], str]] = [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (401, anthropic.AuthenticationError, "authentication_error"),
    (402, anthropic.PaymentRequiredError, "billing_error"),
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (413, anthropic.ContentTooLargeError, "request_too_large"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (504, anthropic.GatewayTimeoutError, "timeout_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "exception", "type_"), STATUS_ERRORS)
async def test_status(claude: anthropic.AsyncAnthropic, status: int, exception: type[anthropic.APIStatusError],
                      type_: str) -> None:
    for stream in (False, True):
        with pytest.raises(exception) as caught:
            await claude.messages.create(model=f"{MODEL}#status={status}", max_tokens=10, messages=USER,  # type: ignore[arg-type]
                                         stream=stream)
        error = caught.value
        assert error.status_code == status and error.type == type_
        assert isinstance(error.body, dict) and set(error.body) == {"type", "error", "request_id"}
    if status == 404:
        assert f"model: {MODEL}" in error.message


async def test_retry_after_and_rate_limit_headers(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model=f"{MODEL}#status=429;retry_after=2", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2" and headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await claude.messages.create(model=f"{MODEL}#status=529;retry_after=1", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    assert overloaded.value.response.headers["retry-after"] == "1"


async def test_hang_and_fail_first(sim: SimServer) -> None:
    quick = anthropic.AsyncAnthropic(base_url=sim.url, api_key="k", max_retries=0, timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        await quick.messages.create(model=f"{MODEL}#hang", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    sim.set_behaviour(MODEL, "fail_first=2")
    for _ in range(2):
        with pytest.raises(anthropic.APIStatusError) as caught:
            await quick.messages.create(model=MODEL, max_tokens=10, messages=USER)  # type: ignore[arg-type]
        assert caught.value.status_code == 503
    assert (await quick.messages.create(model=MODEL, max_tokens=10, messages=USER)).content  # type: ignore[arg-type]
    await quick.close()
