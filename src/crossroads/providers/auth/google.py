"""OAuth2 access tokens for Google Vertex AI, through google-auth.

Application Default Credentials (`google.auth.default`): the service-account JSON named by
`GOOGLE_APPLICATION_CREDENTIALS`, the gcloud user's credentials, workload identity, or the metadata server.
The token is cached; google-auth counts it expired a few minutes before it really is
(`google.auth._helpers.REFRESH_THRESHOLD`), so it is refreshed before expiry. Loading and refreshing post to
a token endpoint with a blocking transport, so they run in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Final

import google.auth
import urllib3
from google.auth.credentials import Credentials
from google.auth.transport.urllib3 import Request

from crossroads.catalog.types import Provider
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest

SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)


class GoogleTokens:
    __slots__ = ("_credentials", "_http", "_lock", "_provider", "_token")

    def __init__(self, provider: Provider, credentials: Credentials | None = None) -> None:
        self._provider = provider.name
        self._credentials = credentials
        self._token: str | None = None
        self._lock = asyncio.Lock()
        self._http: Any = None

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        token = self._token if self._fresh() else await self._refresh()
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        return dataclasses.replace(request, headers=headers)

    async def close(self) -> None:
        if self._http is not None:
            self._http.clear()  # the token endpoint's pooled connections

    def _fresh(self) -> bool:
        return self._token is not None and self._credentials is not None and bool(self._credentials.valid)

    async def _refresh(self) -> str:
        async with self._lock:
            if not self._fresh():
                self._token = await asyncio.to_thread(self._load)
            assert self._token is not None
            return self._token

    def _load(self) -> str:
        """In a worker thread: find the credentials (once) and get a new token."""
        try:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=SCOPES)
            if self._http is None:
                self._http = urllib3.PoolManager()
            self._credentials.refresh(Request(self._http))  # type: ignore[no-untyped-call]
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UpstreamError(502, f"Google credentials could not be loaded: {exc}", provider=self._provider,
                                error_type="provider_unavailable") from exc
        token = self._credentials.token
        if not isinstance(token, str):
            raise UpstreamError(502, "Google's token endpoint returned no access token", provider=self._provider,
                                error_type="provider_unavailable")
        return token


__all__ = ["SCOPES", "GoogleTokens"]
