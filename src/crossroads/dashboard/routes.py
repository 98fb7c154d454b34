"""The dashboard's routes: its pages, sign-in and sign-out, and its JSON API under `/dashboard/api/`.

Most of the API is the gateway's own public handlers, called with the credential the session was opened
with (`FORWARDED`): the dashboard shows exactly what `/api/v1/activity`, `/keys`, `/models`, `/generation`
and `/chat/completions` answer that key, and cannot show more. A session opened with an API key therefore
sees only that key's data, as the key itself would through the API.

Every state-changing call needs the session's CSRF token in `X-CSRF-Token` and, when the browser sends an
`Origin`, this host as its origin. Cookies are `HttpOnly`, `SameSite=Strict`, expire with the session, and
are `Secure` when the request came over TLS — directly, or through a proxy in `CROSSROADS_TRUSTED_PROXIES`
that says `X-Forwarded-Proto: https`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from crossroads.api.body import read_json
from crossroads.api.render import json_response
from crossroads.dashboard.sessions import ADMIN, Session, Sessions, csrf_matches
from crossroads.dashboard.views import Views
from crossroads.errors import Forbidden, InvalidParameter, Unauthorized
from crossroads.ledger.keys import KeyRing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE: Final = "crossroads_session"
STATIC: Final = Path(__file__).parent / "static"
API: Final = "/dashboard/api"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Pages are the one HTML shell; the script draws the page its path names.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Gateway:
    """The gateway's public handlers the dashboard answers through."""

    activity: Handler
    keys_index: Handler
    keys_create: Handler
    keys_update: Handler
    keys_delete: Handler
    key: Handler
    credits: Handler
    models: Handler
    model: Handler
    endpoints: Handler
    providers: Handler
    generation: Handler
    chat: Handler


def forwarded(gateway: Gateway) -> tuple[tuple[str, str, Handler], ...]:
    """Dashboard API routes answered by a public handler with the session's credential."""
    return (
        ("GET", "/activity", gateway.activity),
        ("GET", "/keys", gateway.keys_index),
        ("POST", "/keys", gateway.keys_create),
        ("PATCH", "/keys/{hash}", gateway.keys_update),
        ("DELETE", "/keys/{hash}", gateway.keys_delete),
        ("GET", "/key", gateway.key),
        ("GET", "/credits", gateway.credits),
        ("GET", "/models", gateway.models),
        ("GET", "/model/{author}/{slug}", gateway.model),
        ("GET", "/models/{author}/{slug}/endpoints", gateway.endpoints),
        ("GET", "/providers", gateway.providers),
        ("GET", "/generation", gateway.generation),
    )


class Dashboard:
    def __init__(self, keys: KeyRing, views: Views, gateway: Gateway,
                 trusted_proxies: tuple[IPv4Network | IPv6Network, ...], max_body: int, sessions: Sessions) -> None:
        self.keys = keys
        self.views = views
        self.gateway = gateway
        self.trusted_proxies = trusted_proxies
        self.max_body = max_body
        self.sessions = sessions
        self._index = (STATIC / "index.html").read_bytes()

    def mount(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", f"{API}/session", self.session)
        add("POST", f"{API}/session", self.sign_in)
        add("DELETE", f"{API}/session", self.sign_out)
        add("GET", f"{API}/generations", self.generations)
        add("GET", f"{API}/catalog/providers", self.model_providers)
        add("GET", f"{API}/models/{{author}}/{{slug}}/history", self.history)
        add("POST", f"{API}/chat/completions", self.playground)
        for method, path, handler in forwarded(self.gateway):
            add(method, API + path, self._forwarding(handler))
        app.router.add_static("/dashboard/static", STATIC)
        add("GET", "/", self.page)
        add("GET", "/dashboard", self.page)
        add("GET", "/dashboard/{page:(?!api/|static/).*}", self.page)

    # -- pages ----------------------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._index, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)

    # -- sign-in ------------------------------------------------------------------------------------------

    async def sign_in(self, request: web.Request) -> web.Response:
        # No session yet, so no CSRF token: a cross-site sign-in is refused by its Origin and SameSite=Strict.
        self._same_origin(request)
        body = await read_json(request, self.max_body)
        secret = body.get("key") if isinstance(body, dict) else None
        if not isinstance(secret, str) or not secret.strip():
            raise InvalidParameter("key", "is required")
        credential = f"Bearer {secret.strip()}"
        admin = self.keys.is_admin(credential)
        principal = ADMIN if admin else (await self.keys.authenticate(credential)).hash
        session = await self.sessions.open(secret.strip(), principal)
        response = json_response(self._describe(session))
        response.set_cookie(COOKIE, session.token, max_age=int(self.sessions.lifetime), path="/", httponly=True,
                            samesite="Strict", secure=self._secure(request))
        return response

    async def session(self, request: web.Request) -> web.Response:
        """The current session, or `null` data without one (a page asks this first; a 401 would be logged as
        an error by the browser on every visit before sign-in)."""
        session = await self.sessions.find(request.cookies.get(COOKIE))
        return json_response(self._describe(session) if session else {"data": None})

    async def sign_out(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        self._check_csrf(request, session)
        await self.sessions.close(session.token)  # on every process: the next call anywhere finds no session
        response = json_response({"signed_out": True})
        response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=self._secure(request))
        return response

    # -- the API ------------------------------------------------------------------------------------------

    def _forwarding(self, handler: Handler) -> Handler:
        async def forward(request: web.Request) -> web.StreamResponse:
            session = await self._session(request)
            if request.method not in SAFE_METHODS:
                self._check_csrf(request, session)
            return await handler(_as(request, session.credential))

        return forward

    async def generations(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        return await self.views.generations(request, None if session.admin else session.principal)

    async def history(self, request: web.Request) -> web.Response:
        await self._session(request)
        return await self.views.history(request)

    async def model_providers(self, request: web.Request) -> web.Response:
        await self._session(request)
        return self.views.model_providers()

    async def playground(self, request: web.Request) -> web.StreamResponse:
        """Chat completions as the session's key; an admin session gets a key of its own for this, created on
        first use and ending with the session (management keys cannot ask models)."""
        session = await self._session(request)
        self._check_csrf(request, session)
        secret = await self.sessions.playground(session) if session.admin else session.credential
        return await self.gateway.chat(_as(request, secret))

    # -- checks -------------------------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> Session:
        session = await self.sessions.find(request.cookies.get(COOKIE))
        if session is None:
            raise Unauthorized("Sign in to the dashboard first")
        if not session.admin:
            # The key must still be good (not disabled, deleted or expired since sign-in, on any process: the
            # key ring takes changes from storage within a second): one hash and a dict lookup. A key refused
            # ends the session for good, even if the key is enabled again later.
            try:
                await self.keys.authenticate(f"Bearer {session.credential}")
            except Unauthorized:
                await self.sessions.close(session.token)
                raise
        return session

    def _check_csrf(self, request: web.Request, session: Session) -> None:
        self._same_origin(request)
        if not csrf_matches(session, request.headers.get("X-CSRF-Token")):
            raise Forbidden("Missing or wrong X-CSRF-Token")

    @staticmethod
    def _same_origin(request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise Forbidden("Cross-origin requests are refused")

    def _secure(self, request: web.Request) -> bool:
        if request.secure:
            return True
        if request.headers.get("X-Forwarded-Proto", "").strip().lower() != "https" or not request.remote:
            return False
        try:
            peer = ip_address(request.remote)
        except ValueError:
            return False
        return any(peer in network for network in self.trusted_proxies)

    @staticmethod
    def _describe(session: Session) -> dict[str, object]:
        return {"data": {"role": "admin" if session.admin else "key",
                         "api_key_hash": None if session.admin else session.principal,
                         "csrf_token": session.csrf, "expires_at": session.expires_at}}


def _as(request: web.Request, secret: str) -> web.Request:
    """The request as the public API would get it from the key itself: its credential, and no cookie."""
    headers = CIMultiDict(request.headers)
    headers["Authorization"] = f"Bearer {secret}"
    headers.popall("Cookie", None)
    headers.popall("X-CSRF-Token", None)
    return request.clone(headers=headers)
