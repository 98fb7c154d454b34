"""OAuth2 tokens for Vertex AI from a service-account key: obtained from a token endpoint that verifies the
key's signature, cached, refreshed before expiry, and always fetched off the event loop."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import Any

import pytest
from google.oauth2 import service_account

from crossroads.catalog.types import DataPolicy, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.auth.google import SCOPES, GoogleTokens
from crossroads.providers.base import UpstreamRequest
from tests.cloud_fakes import TokenEndpoint

PROVIDER = Provider(slug="google-vertex", name="Google Vertex", wire_format="vertex",
                    base_url="https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5",
                    api_key=None, data_policy=DataPolicy(), credentials="google")
REQUEST = UpstreamRequest(url=PROVIDER.base_url + "/publishers/google/models/gemini-2.5-flash:generateContent",
                          headers={"Content-Type": "application/json"}, body=b"{}")


class Recorded(service_account.Credentials):  # type: ignore[misc]
    """A service account that notes the thread of each refresh."""

    threads: list[int]

    def refresh(self, request: Any) -> None:
        self.threads.append(threading.get_ident())
        super().refresh(request)


async def test_token_from_application_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with TokenEndpoint().running() as endpoint:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(endpoint.service_account(tmp_path / "sa.json")))
        tokens = GoogleTokens(PROVIDER)
        first = await tokens.sign(REQUEST)
        second = await tokens.sign(REQUEST)
    assert endpoint.issued and first.headers["Authorization"] == f"Bearer {endpoint.issued[0]}"
    assert second.headers == first.headers and len(endpoint.issued) == 1
    assert first.headers["Content-Type"] == "application/json" and first.body == REQUEST.body


async def test_token_is_refreshed_before_it_expires_in_a_worker_thread(tmp_path: Path) -> None:
    async with TokenEndpoint().running() as endpoint:
        credentials = Recorded.from_service_account_file(str(endpoint.service_account(tmp_path / "sa.json")),
                                                         scopes=SCOPES)
        credentials.threads = []
        tokens = GoogleTokens(PROVIDER, credentials)
        await tokens.sign(REQUEST)
        # Two minutes left: inside google-auth's refresh threshold, so it counts as expired already.
        credentials.expiry = (datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                              + datetime.timedelta(minutes=2))
        signed = await tokens.sign(REQUEST)
    assert len(endpoint.issued) == 2 and signed.headers["Authorization"] == f"Bearer {endpoint.issued[1]}"
    assert len(credentials.threads) == 2 and threading.get_ident() not in credentials.threads


async def test_a_key_the_token_endpoint_refuses_is_an_upstream_error(tmp_path: Path) -> None:
    async with TokenEndpoint().running() as endpoint:
        other = TokenEndpoint()
        other.url = endpoint.url  # the same endpoint, but a key it does not know
        credentials = service_account.Credentials.from_service_account_file(
            str(other.service_account(tmp_path / "sa.json")), scopes=SCOPES)
        with pytest.raises(UpstreamError, match="invalid_grant") as caught:
            await GoogleTokens(PROVIDER, credentials).sign(REQUEST)
    assert caught.value.code == 502 and not endpoint.issued
