"""Entra ID tokens for Azure OpenAI through azure-identity's async DefaultAzureCredential: from a service
principal at a configurable authority and from App Service's managed identity, cached, renewed before they
expire while requests go on with the current one, fetched without blocking the event loop, and refusals
turned into the gateway's upstream errors."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.identity.aio import DefaultAzureCredential

from crossroads.catalog.types import DataPolicy, Provider
from crossroads.errors import ConfigError, UpstreamError
from crossroads.providers.auth import build_authenticators, signs_with_chain
from crossroads.providers.auth.azure import EntraTokens
from crossroads.providers.base import UpstreamRequest
from tests.cloud_fakes import EntraID

#: What the test process's environment could hold that would send DefaultAzureCredential elsewhere.
AZURE_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                   "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME",
                   "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
                   "AZURE_TOKEN_CREDENTIALS")


def provider(key: str | None = None, auth: str | None = None) -> Provider:
    options = (("api_version", "2024-10-21"),) + ((("auth", auth),) if auth else ())
    return Provider(slug="azure", name="Azure", wire_format="azure_openai", base_url="https://res.openai.azure.com",
                    api_key=key, data_policy=DataPolicy(), credentials="azure", options=options)


REQUEST = UpstreamRequest(url="https://res.openai.azure.com/openai/deployments/gpt-4.1-mini/chat/completions"
                              "?api-version=2024-10-21", headers={"Content-Type": "application/json"}, body=b"{}")


@pytest.fixture
async def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EntraID]:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    async with EntraID(tmp_path).running() as fake:
        yield fake


def service_principal(entra: EntraID, monkeypatch: pytest.MonkeyPatch) -> DefaultAzureCredential:
    """The default chain, finding the service principal in the environment; it trusts the test authority's
    certificate authority (a deployment's authority has a public certificate)."""
    for name, value in entra.environment().items():
        monkeypatch.setenv(name, value)
    return DefaultAzureCredential(connection_verify=str(entra.ca_file))


async def test_service_principal_token_at_the_configured_authority(entra: EntraID,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = EntraTokens(provider(), service_principal(entra, monkeypatch))
    try:
        first, second = await asyncio.gather(tokens.sign(REQUEST), tokens.sign(REQUEST))
        third = await tokens.sign(REQUEST)
    finally:
        await tokens.close()
    (token,) = entra.issued  # one request to Entra, for the concurrent and the later requests alike
    assert entra.requests == ["client_credentials"]
    assert first.headers == second.headers == third.headers == {"Content-Type": "application/json",
                                                                "Authorization": f"Bearer {token}"}
    assert first.url == REQUEST.url and first.body == REQUEST.body


async def test_workload_identity(entra: EntraID, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in entra.workload_identity(tmp_path).items():
        monkeypatch.setenv(name, value)
    tokens = EntraTokens(provider(), DefaultAzureCredential(connection_verify=str(entra.ca_file)))
    try:
        signed = await tokens.sign(REQUEST)
    finally:
        await tokens.close()
    assert entra.requests == ["workload_identity"]
    assert signed.headers["Authorization"] == f"Bearer {next(iter(entra.issued))}"


async def test_app_service_managed_identity(entra: EntraID, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in entra.managed_identity().items():
        monkeypatch.setenv(name, value)
    tokens = EntraTokens(provider())  # DefaultAzureCredential() itself, as the gateway builds it
    try:
        signed = await tokens.sign(REQUEST)
        await tokens.sign(REQUEST)
    finally:
        await tokens.close()
    assert entra.requests == ["managed_identity"]
    assert signed.headers["Authorization"] == f"Bearer {next(iter(entra.issued))}"


async def test_fetching_a_token_leaves_the_event_loop_free(entra: EntraID, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in entra.managed_identity().items():
        monkeypatch.setenv(name, value)
    entra.delay = 0.6
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    ticker = asyncio.create_task(tick())
    tokens = EntraTokens(provider())
    try:
        started = time.monotonic()
        await tokens.sign(REQUEST)
        took = time.monotonic() - started
    finally:
        ticker.cancel()
        await tokens.close()
    assert took >= 0.6
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 15 and max(gaps) < 0.3


async def test_a_token_is_renewed_before_it_expires_while_requests_go_on(entra: EntraID,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # azure-identity asks Entra again at the earliest 30 s after its last request, so the token lives 34 s:
    # past half its life this gateway asks for the next, and at 31 s the library fetches it.
    entra.lifetime = 34
    for name, value in entra.managed_identity().items():
        monkeypatch.setenv(name, value)
    tokens = EntraTokens(provider())
    try:
        first = (await tokens.sign(REQUEST)).headers["Authorization"]
        old = next(iter(entra.issued))
        await asyncio.sleep(31)
        entra.delay = 0.5  # the renewal is slow; the request that starts it does not wait for it
        started = time.monotonic()
        during = (await tokens.sign(REQUEST)).headers["Authorization"]
        assert time.monotonic() - started < 0.3
        # The fake counts a token once it sent it; the gateway keeps it a moment later, when the reply is read.
        for _ in range(100):
            after = (await tokens.sign(REQUEST)).headers["Authorization"]
            if len(entra.issued) == 2 and after != first:
                break
            await asyncio.sleep(0.05)
    finally:
        await tokens.close()
    new = list(entra.issued)[1]
    assert first == during == f"Bearer {old}" and after == f"Bearer {new}"
    assert entra.valid(old)  # renewed before the old token expired


async def test_an_expired_token_is_replaced_before_the_request_is_sent(entra: EntraID,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    entra.lifetime = 2
    for name, value in entra.managed_identity().items():
        monkeypatch.setenv(name, value)
    tokens = EntraTokens(provider())
    try:
        await tokens.sign(REQUEST)
        await asyncio.sleep(2.1)
        signed = await tokens.sign(REQUEST)
    finally:
        await tokens.close()
    old, new = entra.issued
    assert not entra.valid(old) and entra.valid(new) and signed.headers["Authorization"] == f"Bearer {new}"


async def test_a_refused_secret_is_an_upstream_error(entra: EntraID, monkeypatch: pytest.MonkeyPatch) -> None:
    credential = service_principal(entra, monkeypatch)
    entra.client_secret = "rotated"
    tokens = EntraTokens(provider(), credential)
    try:
        with pytest.raises(UpstreamError, match="AADSTS7000215: Invalid client secret") as caught:
            await tokens.sign(REQUEST)
        # For a few seconds the failure is the answer, without asking Entra again (fallbacks stay quick).
        with pytest.raises(UpstreamError, match="AADSTS7000215"):
            await tokens.sign(REQUEST)
    finally:
        await tokens.close()
    assert caught.value.code == 502 and caught.value.kind == "provider_unavailable"
    assert caught.value.provider == "Azure" and not entra.issued
    assert entra.requests == ["client_credentials"]


@pytest.mark.parametrize(("key", "auth", "signs"), [
    (None, None, True),        # no key: Entra ID
    ("k", None, False),        # a key wins
    ("k", "entra", True),      # unless the auth option asks for Entra ID
    (None, "entra", True),
    ("k", "key", False),
])
async def test_when_entra_signs(key: str | None, auth: str | None, signs: bool) -> None:
    azure = provider(key, auth)
    assert signs_with_chain(azure) is signs
    built = build_authenticators([azure])
    assert (set(built) == {"azure"}) is signs
    for authenticator in built.values():
        assert isinstance(authenticator, EntraTokens)
        await authenticator.close()


def test_an_unknown_auth_option_stops_the_gateway() -> None:
    with pytest.raises(ConfigError, match="CROSSROADS_PROVIDER_AZURE_AUTH: 'oauth' is not a way 'azure' "):
        build_authenticators([provider("k", "oauth")])


def test_without_azure_identity_a_keyless_azure_stops_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity.aio", None)  # as if crossroads[azure] were not installed
    monkeypatch.delitem(sys.modules, "crossroads.providers.auth.azure")
    with pytest.raises(ConfigError, match=r"pip install 'crossroads\[azure\]'"):
        build_authenticators([provider()])
    assert build_authenticators([provider("k")]) == {}  # with its key, Azure needs no library
