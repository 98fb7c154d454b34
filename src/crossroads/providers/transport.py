"""HTTP to upstream providers: one pooled aiohttp client, and the one place where the client library's
exceptions become `UpstreamError`s.

aiohttp rather than httpx on this path: in the benchmark suite's instant-upstream scenario its client cost
per request is markedly lower (see docs/benchmarks.md); connections are kept alive and pooled per host.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp

from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest


class Upstream:
    """An upstream reply whose headers have arrived; the body is read or streamed from it."""

    __slots__ = ("_response", "provider", "status")

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self.status = response.status
        self.provider = provider

    @property
    def headers(self) -> aiohttp.typedefs.LooseHeaders:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self.provider) from exc
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Ends cleanly only if the upstream ended the body cleanly."""
        content = self._response.content
        try:
            while True:
                data = await content.readany()
                if not data:
                    return
                yield data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self.provider) from exc

    def close(self) -> None:
        """Drop the connection (not back to the pool): used when a stream is abandoned mid-way, so the
        provider sees the request cancelled at once."""
        self._response.close()


class Transport:
    def __init__(self, *, connect_timeout: float, read_timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap: back-pressure belongs to the providers' 429s and our own limits
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=60,
            enable_cleanup_closed=False,
            socket_factory=_nodelay_socket,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, raise_for_status=False,
            skip_auto_headers=("User-Agent",), headers={"User-Agent": "crossroads"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, request: UpstreamRequest, provider: str) -> Upstream:
        """Send the request; return once the reply's status line and headers have arrived."""
        assert self._session is not None, "Transport.start() was not awaited"
        try:
            response = await self._session.post(request.url, data=request.body, headers=request.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, provider) from exc
        return Upstream(response, provider)


def _nodelay_socket(addr_info: tuple[int, int, int, str, tuple[str, int]]) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setblocking(False)
    if family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _translate(exc: BaseException, provider: str) -> UpstreamError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamError(504, "Provider timed out", provider=provider, error_type="timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(502, f"Could not connect to provider: {exc.os_error.strerror or exc}",
                             provider=provider, error_type="provider_unavailable")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamError(502, "Provider closed the connection mid-reply", provider=provider,
                             error_type="provider_unavailable")
    return UpstreamError(502, f"Provider connection failed: {type(exc).__name__}", provider=provider,
                         error_type="provider_unavailable")
