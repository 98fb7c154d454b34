"""AWS Signature Version 4 for Amazon Bedrock, with botocore's signer and credential chain.

Credentials come from `botocore.session.get_session().get_credentials()`: environment variables, the shared
config and credentials files (profiles, SSO), web identity, and container or instance metadata. Temporary
credentials (`RefreshableCredentials`) are refreshed by botocore when they near expiry; finding them and
refreshing them may wait on the network, so both run in a worker thread. Signing
(`botocore.auth.SigV4Auth` on an `AWSRequest`: "Signature Version 4 signing process" in the IAM guide) is
a few HMACs, done on the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Final

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.session import get_session

from crossroads.catalog.types import Provider
from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest

#: The signing name of Bedrock's runtime API (`bedrock-runtime.{region}.amazonaws.com`).
SERVICE: Final = "bedrock"


class AWSSigner:
    __slots__ = ("_credentials", "_frozen", "_lock", "_provider", "_region")

    def __init__(self, provider: Provider, credentials: Credentials | None = None) -> None:
        self._provider = provider.name
        region = provider.option("region")
        if region is None:
            raise ValueError(f"provider {provider.slug!r} has no region")
        self._region = region
        #: None until first use (botocore's chain is searched then, off the loop).
        self._credentials: Credentials | None = credentials
        self._frozen: ReadOnlyCredentials | None = None
        self._lock = asyncio.Lock()

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        frozen = self._frozen
        if frozen is None or self._stale():
            frozen = await self._refresh()
        aws = AWSRequest(method=request.method, url=request.url, data=request.body, headers=dict(request.headers))
        SigV4Auth(frozen, SERVICE, self._region).add_auth(aws)
        return dataclasses.replace(request, headers=dict(aws.headers.items()))

    async def close(self) -> None:
        return None  # botocore's credential providers hold nothing open between refreshes

    def _stale(self) -> bool:
        credentials = self._credentials
        return isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed()

    async def _refresh(self) -> ReadOnlyCredentials:
        async with self._lock:  # one refresh at a time; the requests waiting meanwhile use its result
            if self._frozen is not None and not self._stale():
                return self._frozen
            self._frozen = await asyncio.to_thread(self._load)
            return self._frozen

    def _load(self) -> ReadOnlyCredentials:
        """In a worker thread: find the credentials (once), then freeze them, refreshing if they are due."""
        try:
            if self._credentials is None:
                self._credentials = get_session().get_credentials()
            if self._credentials is None:
                raise UpstreamError(502, "No AWS credentials found for Amazon Bedrock (environment, shared "
                                    "files, web identity or instance metadata)", provider=self._provider,
                                    error_type="provider_unavailable")
            frozen: Any = self._credentials.get_frozen_credentials()
        except UpstreamError:
            raise
        except Exception as exc:  # botocore's credential errors have no common base beyond this
            raise UpstreamError(502, f"AWS credentials could not be loaded: {exc}", provider=self._provider,
                                error_type="provider_unavailable") from exc
        return frozen


__all__ = ["SERVICE", "AWSSigner"]
