"""SigV4 signing for Bedrock: the signature checks out when botocore recomputes it from the request as sent,
credentials come from botocore's chain, and refreshing them runs off the event loop."""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest
from botocore.credentials import ReadOnlyCredentials, RefreshableCredentials

from crossroads.catalog.types import DataPolicy, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.auth import build_authenticators
from crossroads.providers.auth.aws import AWSSigner
from crossroads.providers.base import UpstreamRequest
from tests.cloud_fakes import Refused, aws_environment, verify_sigv4

REGION = "eu-central-1"
KEYS = ReadOnlyCredentials("AKIDTESTSIGNER000001", "signer/secret+key", None)
URL = "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
BODY = b'{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[]}'


def provider(key: str | None = None) -> Provider:
    return Provider(slug="amazon-bedrock", name="Amazon Bedrock", wire_format="bedrock",
                    base_url="https://bedrock-runtime.eu-central-1.amazonaws.com", api_key=key,
                    data_policy=DataPolicy(), credentials="aws", options=(("region", REGION),))


def request() -> UpstreamRequest:
    return UpstreamRequest(url=URL, headers={"content-type": "application/json", "accept": "application/json"},
                           body=BODY)


def received(signed: UpstreamRequest) -> dict[str, str]:
    """The headers as the service receives them: the HTTP client adds Host (and more, unsigned)."""
    return {**signed.headers, "host": "bedrock-runtime.eu-central-1.amazonaws.com", "Content-Length": "71"}


async def test_signature_verifies_and_tampering_does_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in aws_environment(KEYS, tmp_path).items():
        monkeypatch.setenv(name, value)
    signed = await AWSSigner(provider()).sign(request())
    assert signed.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEYS.access_key}/")
    verify_sigv4("POST", URL, received(signed), BODY, KEYS, REGION)
    with pytest.raises(Refused, match="signature"):
        verify_sigv4("POST", URL, received(signed), BODY.replace(b"10", b"99"), KEYS, REGION)
    with pytest.raises(Refused, match="signature"):
        verify_sigv4("POST", URL.replace("invoke", "invoke-with-response-stream"), received(signed), BODY, KEYS,
                     REGION)
    with pytest.raises(Refused, match="signature"):
        verify_sigv4("POST", URL, received(signed), BODY, KEYS._replace(secret_key="other"), REGION)
    with pytest.raises(Refused, match="scope"):
        verify_sigv4("POST", URL, received(signed), BODY, KEYS, "us-east-1")


async def test_expiring_credentials_are_refreshed_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    refreshed_in: list[int] = []
    generation = iter(range(1, 100))

    def refresh() -> dict[str, str]:
        refreshed_in.append(threading.get_ident())
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=60)
        return {"access_key": f"ASIAREFRESHED{next(generation):07d}", "secret_key": "rotated/secret",
                "token": "session", "expiry_time": soon.isoformat()}

    expired = refresh()
    expired["expiry_time"] = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)).isoformat()
    refreshed_in.clear()
    credentials = RefreshableCredentials.create_from_metadata(expired, refresh, "test")
    signer = AWSSigner(provider(), credentials)
    signed = await signer.sign(request())
    assert refreshed_in and all(thread != loop_thread for thread in refreshed_in)
    current = credentials.get_frozen_credentials()
    assert current.access_key != "ASIAREFRESHED0000001"
    verify_sigv4("POST", URL, received(signed), BODY, current, REGION)
    count = len(refreshed_in)
    await signer.sign(request())  # fresh for an hour: no refresh
    assert len(refreshed_in) == count


async def test_no_credentials_anywhere_is_an_upstream_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UpstreamError, match="No AWS credentials") as caught:
        await AWSSigner(provider()).sign(request())
    assert caught.value.code == 502


def test_authenticators_only_for_configured_providers_without_a_key() -> None:
    assert list(build_authenticators([provider()])) == ["amazon-bedrock"]
    assert build_authenticators([provider(key="bedrock-api-key")]) == {}
    unconfigured = Provider(slug="x", name="X", wire_format="bedrock", base_url="https://x", api_key=None,
                            credentials="aws", enabled=False)
    assert build_authenticators([unconfigured]) == {}
