"""Cloud credentials: signing upstream requests of providers that authenticate with a cloud's own credential
chain rather than an API key (the catalog's `credentials` field).

An `Authenticator` turns a built request into a signed one just before it is sent (`providers/transport.py`).
Adapters stay free of I/O: fetching or refreshing credentials may block (instance metadata, a token
endpoint), so it runs in a worker thread, never on the event loop; signing itself is cheap. Each cloud's
library is imported only when a provider that needs it is configured, so a gateway without cloud providers
never loads them (botocore is installed with Crossroads; google-auth is the `crossroads[vertex]` extra).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

from crossroads.catalog.types import Provider
from crossroads.errors import ConfigError
from crossroads.providers.base import UpstreamRequest


class Authenticator(Protocol):
    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        """The request with the credentials it needs; raises `UpstreamError` when none can be had."""
        ...


#: Credential chain → (module, class, what installs its library).
CHAINS: Final[Mapping[str, tuple[str, str, str]]] = {
    "aws": ("crossroads.providers.auth.aws", "AWSSigner", "botocore"),
    "google": ("crossroads.providers.auth.google", "GoogleTokens", "crossroads[vertex]"),
}


def build_authenticators(providers: Iterable[Provider]) -> dict[str, Authenticator]:
    """An authenticator per configured provider that signs with a credential chain: those without an API
    key (a key, where the cloud takes one, is sent by the adapter itself)."""
    out: dict[str, Authenticator] = {}
    for provider in providers:
        if provider.credentials is None or provider.api_key or not provider.configured:
            continue
        module, name, extra = CHAINS[provider.credentials]
        try:
            factory = getattr(importlib.import_module(module), name)
        except ImportError as exc:
            raise ConfigError(f"provider {provider.slug!r} signs with {provider.credentials} credentials, which "
                              f"need a library that is not installed: pip install '{extra}' ({exc})") from exc
        out[provider.slug] = factory(provider)
    return out


__all__ = ["CHAINS", "Authenticator", "build_authenticators"]
