"""Microsoft Entra ID access tokens for Azure OpenAI, through azure-identity's async credentials.

The credential is `azure.identity.aio.DefaultAzureCredential`, one per provider: a service principal from
the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or a certificate), workload
identity (AZURE_FEDERATED_TOKEN_FILE), managed identity (App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER,
Azure Arc, the instance metadata service), then a developer's sign-in (Azure CLI, azd, PowerShell).
AZURE_AUTHORITY_HOST names another cloud's Entra endpoint. Tokens are for the scope
`https://cognitiveservices.azure.com/.default` and sent as `Authorization: Bearer` ("Authenticate with
Microsoft Entra ID" in the Azure OpenAI docs).

The credential's HTTP is async (azure-core over aiohttp), so fetching a token never blocks the event loop.
The token is kept here with its expiry, so a request costs no call into the library: from its refresh time
— Entra's `refresh_on` when it gives one, else five minutes before expiry (as azure-core's bearer-token
policy does), or half its lifetime when that is shorter — one background task asks for the next while
requests go on with the current one; only a request finding no token, or an expired one, waits. The library
keeps its own cache and does not ask Entra again within 30 s of its last request while the cached token is
valid (`DEFAULT_TOKEN_REFRESH_RETRY_DELAY`); a refresh that brings back the same token is tried again after
that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from typing import Final

from azure.core.credentials import AccessTokenInfo
from azure.core.credentials_async import AsyncSupportsTokenInfo
from azure.core.exceptions import AzureError
from azure.identity.aio import DefaultAzureCredential

from crossroads.catalog.types import Provider
from crossroads.errors import ConfigError, UpstreamError
from crossroads.providers.base import UpstreamRequest

SCOPE: Final = "https://cognitiveservices.azure.com/.default"
#: Seconds before expiry when the next token is fetched, at the latest.
REFRESH_WINDOW: Final = 300.0
#: Seconds between refresh attempts while the current token is still valid.
RETRY_DELAY: Final = 30.0
#: Seconds during which a failure to get a token is the answer to every request, without asking again: a
#: chain that failed (Entra down, a revoked secret) would otherwise delay each request's fallback.
FAILURE_HOLD: Final = 5.0
#: The longest part of a credential chain's report kept in an error message.
_MESSAGE_LIMIT: Final = 600

log = logging.getLogger("crossroads.providers")


class EntraTokens:
    __slots__ = ("_background", "_credential", "_expires_at", "_failed", "_failed_until", "_lock", "_provider",
                 "_refresh_at", "_token")

    def __init__(self, provider: Provider, credential: AsyncSupportsTokenInfo | None = None) -> None:
        self._provider = provider.name
        if credential is None:
            try:
                credential = DefaultAzureCredential()
            except ValueError as exc:  # e.g. an AZURE_AUTHORITY_HOST that is not https
                raise ConfigError(f"provider {provider.slug!r}: Azure credentials: {exc}") from exc
        self._credential = credential
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        #: The last failure to get a token, repeated until `_failed_until`.
        self._failed: UpstreamError | None = None
        self._failed_until = 0.0

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        now = time.time()
        token = self._token
        if token is None or now >= self._expires_at:
            token = await self._renew()
        elif now >= self._refresh_at and self._background is None:
            self._background = asyncio.create_task(self._renew_in_background())
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        return dataclasses.replace(request, headers=headers)

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        await self._credential.close()

    async def _renew(self) -> str:
        """A valid token, fetched now unless a renewal under way (or just finished) brings one."""
        async with self._lock:  # one request to Entra at a time; those waiting use its token
            now = time.time()
            if self._token is None or now >= self._expires_at:
                if self._failed is not None and now < self._failed_until:
                    raise UpstreamError(self._failed.code, self._failed.message, provider=self._provider,
                                        error_type="provider_unavailable")
                try:
                    self._keep(await self._fetch())
                except UpstreamError as exc:
                    self._failed, self._failed_until = exc, time.time() + FAILURE_HOLD
                    raise
            assert self._token is not None
            return self._token

    async def _renew_in_background(self) -> None:
        try:
            async with self._lock:
                if time.time() >= self._refresh_at:
                    self._keep(await self._fetch())
        except UpstreamError as exc:
            # The current token is still good; the next request after RETRY_DELAY tries again, and one
            # finding it expired fetches in the foreground, where a failure becomes that request's error.
            log.warning("%s", exc)
            self._refresh_at = time.time() + RETRY_DELAY
        finally:
            self._background = None

    async def _fetch(self) -> AccessTokenInfo:
        try:
            return await self._credential.get_token_info(SCOPE)
        except AzureError as exc:  # ClientAuthenticationError (and CredentialUnavailableError), transport errors
            message = re.sub(r"\s+", " ", str(exc.message or exc)).strip()
            if len(message) > _MESSAGE_LIMIT:
                message = message[:_MESSAGE_LIMIT] + "…"
            raise UpstreamError(502, f"No Microsoft Entra ID token for {self._provider}: {message}",
                                provider=self._provider, error_type="provider_unavailable") from exc

    def _keep(self, info: AccessTokenInfo) -> None:
        now = time.time()
        lifetime = info.expires_on - now
        refresh_at = min(info.refresh_on or info.expires_on, info.expires_on - min(REFRESH_WINDOW, lifetime / 2))
        if info.token == self._token:  # the library kept its cached token: not before it asks Entra again
            refresh_at = max(refresh_at, now + RETRY_DELAY)
        self._token, self._expires_at, self._refresh_at = info.token, float(info.expires_on), float(refresh_at)
        self._failed = None


__all__ = ["FAILURE_HOLD", "REFRESH_WINDOW", "RETRY_DELAY", "SCOPE", "EntraTokens"]
