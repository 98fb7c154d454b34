"""Gemini simulator: `status=` and `fail_first` answers, as the SDK's exceptions and Google's details expect."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors

from crossroads.sim import SimServer

from .support import MODEL, USER, generate, post, text_of

# google-genai subclasses aiohttp's ClientSession for its async transport, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


STATUSES = [(400, errors.ClientError, "INVALID_ARGUMENT"), (401, errors.ClientError, "UNAUTHENTICATED"),
            (403, errors.ClientError, "PERMISSION_DENIED"), (404, errors.ClientError, "NOT_FOUND"),
            (429, errors.ClientError, "RESOURCE_EXHAUSTED"), (500, errors.ServerError, "INTERNAL"),
            (503, errors.ServerError, "UNAVAILABLE"), (504, errors.ServerError, "DEADLINE_EXCEEDED")]


@pytest.mark.parametrize(("code", "kind", "name"), STATUSES)
async def test_status_errors(gemini: genai.client.AsyncClient, sim: SimServer, code: int,
                             kind: type[errors.APIError], name: str) -> None:
    sim.set_behaviour(MODEL, f"status={code}")
    for stream in (False, True):
        with pytest.raises(kind) as caught:
            await generate(gemini, stream, model=MODEL, contents="x")
        assert caught.value.code == code and caught.value.status == name
    if code == 404:
        assert f"models/{MODEL} is not found" in (caught.value.message or "")


async def test_rate_limit_details(http: aiohttp.ClientSession) -> None:
    status, headers, raw = await post(http, {"contents": USER},
                                      f"/v1beta/models/{MODEL}%23status%3D429%3Bretry_after%3D2:generateContent")
    error = orjson.loads(raw)["error"]
    assert status == 429 and error["status"] == "RESOURCE_EXHAUSTED" and headers["retry-after"] == "2"
    kinds = [detail["@type"].rsplit(".", 1)[1] for detail in error["details"]]
    assert kinds == ["QuotaFailure", "Help", "RetryInfo"] and error["details"][2]["retryDelay"] == "2s"


async def test_failing_first_then_succeeding(gemini: genai.client.AsyncClient, sim: SimServer) -> None:
    sim.set_behaviour(MODEL, "fail_first=1")
    with pytest.raises(errors.ServerError):
        await gemini.models.generate_content(model=MODEL, contents="x")
    assert text_of(await gemini.models.generate_content(model=MODEL, contents="x"))
