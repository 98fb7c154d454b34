"""HTTP to upstream providers, and the one place where transport failures become `UpstreamError`s.

The client is `providers/http.py`: pooled keep-alive connections and little work per request (see its
docstring for why not a general-purpose client). Requests to a provider that signs with a cloud credential
chain are signed here, last, by its `providers/auth` authenticator.
"""

from __future__ import annotations

from collections.abc import Mapping

from crossroads.catalog.types import Provider
from crossroads.errors import UpstreamError
from crossroads.providers.auth import Authenticator
from crossroads.providers.base import UpstreamRequest
from crossroads.providers.http import HTTPClient, HTTPError, Response, Target, request_head


class Upstream:
    """An upstream reply whose headers have arrived; the body is read or streamed from it."""

    __slots__ = ("_response", "provider", "status")

    def __init__(self, response: Response, provider: str) -> None:
        self._response = response
        self.status = response.status
        self.provider = provider

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased."""
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except HTTPError as exc:
            raise _translate(exc, self.provider) from exc

    @property
    def ready(self) -> bool:
        """`next()` would return without waiting."""
        return self._response.ready

    async def next(self) -> bytes | None:
        """The body as it arrives, one call per batch of it (see `Response.next`); None at a clean end."""
        try:
            return await self._response.next()
        except HTTPError as exc:
            raise _translate(exc, self.provider) from exc

    def close(self) -> None:
        """Drop the connection (not back to the pool): used when a stream is abandoned mid-way, so the
        provider sees the request cancelled at once."""
        self._response.close()


class Transport:
    def __init__(self, *, connect_timeout: float, read_timeout: float, first_byte_timeout: float,
                 authenticators: Mapping[str, Authenticator] | None = None) -> None:
        self._client = HTTPClient(connect_timeout=connect_timeout, read_timeout=read_timeout,
                                  first_byte_timeout=first_byte_timeout)
        self._targets: dict[str, Target] = {}
        #: Provider slug → what signs its requests (providers that sign with a cloud credential chain).
        self._authenticators = dict(authenticators or {})

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        try:
            for authenticator in self._authenticators.values():
                await authenticator.close()
        finally:
            await self._client.close()

    async def post(self, request: UpstreamRequest, provider: Provider) -> Upstream:
        """Sign the request if its provider needs it, send it, and return once the reply's status line and
        headers have arrived."""
        authenticator = self._authenticators.get(provider.slug)
        if authenticator is not None:
            request = await authenticator.sign(request)
        return await self.send(request, provider.name)

    async def send(self, request: UpstreamRequest, provider: str) -> Upstream:
        """Send a request as it is (no provider's signing), for a service `provider` names (e.g. web search)."""
        target = self._targets.get(request.url)
        if target is None:
            target = self._targets[request.url] = Target.parse(request.url)
        head = request_head(target, request.headers, len(request.body), request.method)
        try:
            response = await self._client.post(target, head, request.body)
        except HTTPError as exc:
            raise _translate(exc, provider) from exc
        return Upstream(response, provider)


def _translate(exc: HTTPError, provider: str) -> UpstreamError:
    if exc.kind == "timeout":
        return UpstreamError(504, "Provider timed out", provider=provider, error_type="timeout")
    if exc.kind == "connect":
        return UpstreamError(502, f"Could not connect to provider: {exc}", provider=provider,
                             error_type="provider_unavailable")
    if exc.kind == "closed":
        return UpstreamError(502, "Provider closed the connection mid-reply", provider=provider,
                             error_type="provider_unavailable")
    return UpstreamError(502, f"Provider sent a broken reply: {exc}", provider=provider,
                         error_type="provider_unavailable")
