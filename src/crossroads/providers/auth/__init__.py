"""Cloud credentials: signing upstream requests of providers that authenticate with a cloud's own credential
chain rather than an API key (the catalog's `credentials` field).

An `Authenticator` turns a built request into a signed one just before it is sent (`providers/transport.py`).
Adapters stay free of I/O: fetching or refreshing credentials may wait on the network (instance metadata, a
token endpoint), so it never blocks the event loop — a worker thread for the synchronous libraries (botocore,
google-auth), the library's own async client for azure-identity; signing itself is cheap. Each cloud's
library is imported only when a provider that needs it is configured, so a gateway without cloud providers
never loads them (botocore is installed with Crossroads; google-auth and azure-identity are the
`crossroads[vertex]` and `crossroads[azure]` extras).

Which way a provider authenticates is its `auth` option, where its catalog entry has one (Azure's does,
`CROSSROADS_PROVIDER_AZURE_AUTH`): `key` sends only its API key, the chain's name (`entra` for Azure) signs
with the chain even when a key is set, and without the option a key wins and the chain signs otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple, Protocol

from crossroads.catalog.loader import env_name
from crossroads.catalog.types import AUTH_KEY, Provider
from crossroads.errors import ConfigError
from crossroads.providers.base import UpstreamRequest


class Authenticator(Protocol):
    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        """The request with the credentials it needs; raises `UpstreamError` when none can be had."""
        ...

    async def close(self) -> None:
        """Release what the credentials hold (HTTP sessions, a refresh under way); at shutdown."""
        ...


class Chain(NamedTuple):
    module: str
    factory: str
    #: What to install for its library.
    extra: str
    #: Its name as the value of a provider's `auth` option.
    method: str


CHAINS: Final[Mapping[str, Chain]] = {
    "aws": Chain("crossroads.providers.auth.aws", "AWSSigner", "botocore", "sigv4"),
    "google": Chain("crossroads.providers.auth.google", "GoogleTokens", "crossroads[vertex]", "oauth2"),
    "azure": Chain("crossroads.providers.auth.azure", "EntraTokens", "crossroads[azure]", "entra"),
}


def signs_with_chain(provider: Provider) -> bool:
    """Whether the provider's requests are signed by its credential chain rather than carry its API key."""
    if provider.credentials is None:
        return False
    auth = provider.option("auth")
    if auth is None:
        return not provider.api_key
    return auth == CHAINS[provider.credentials].method


def build_authenticators(providers: Iterable[Provider]) -> dict[str, Authenticator]:
    """An authenticator per configured provider that signs with a credential chain (see the module's
    docstring for when it does; a key, where the cloud takes one, is sent by the adapter itself)."""
    out: dict[str, Authenticator] = {}
    for provider in providers:
        if provider.credentials is None or not provider.configured:
            continue
        chain = CHAINS[provider.credentials]
        auth = provider.option("auth")
        if auth not in (None, AUTH_KEY, chain.method):
            raise ConfigError(f"CROSSROADS_PROVIDER_{env_name(provider.slug)}_AUTH: {auth!r} is not a way "
                              f"{provider.slug!r} authenticates (one of {AUTH_KEY!r}, {chain.method!r})")
        if not signs_with_chain(provider):
            continue
        try:
            factory = getattr(importlib.import_module(chain.module), chain.factory)
        except ImportError as exc:
            raise ConfigError(f"provider {provider.slug!r} signs with {provider.credentials} credentials (it has "
                              f"no API key, or its auth option asks for them), which need a library that is not "
                              f"installed: pip install '{chain.extra}' ({exc})") from exc
        out[provider.slug] = factory(provider)
    return out


__all__ = ["CHAINS", "Authenticator", "Chain", "build_authenticators", "signs_with_chain"]
