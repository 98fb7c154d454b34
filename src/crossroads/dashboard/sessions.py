"""Dashboard sessions: opened with the management key or an API key, kept in memory, expiring.

A session's token lives only in the browser's cookie; this process keeps its SHA-256 (like keys, so a
memory dump holds no usable token) and the credential it was opened with, sealed with a keystream derived
from the token: only a request carrying the cookie can unseal it. Each session also has a CSRF token that
every state-changing call must echo in `X-CSRF-Token` (the double-submit pattern on top of
`SameSite=Strict`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: How long a session lasts from sign-in; it is not extended by use.
LIFETIME: Final = 12 * 3600.0
#: Sessions kept at most; the oldest go first.
MAX_SESSIONS: Final = 10_000
ADMIN: Final = "admin"


@dataclass(slots=True)
class Session:
    #: "admin", or the hash of the API key the session was opened with.
    principal: str
    csrf: str
    expires_at: float
    sealed: bytes
    #: An admin session's playground key (management keys cannot ask models), sealed like `sealed`.
    playground: bytes | None = None
    playground_hash: str | None = None

    @property
    def admin(self) -> bool:
        return self.principal == ADMIN


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.time, lifetime: float = LIFETIME) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._by_hash: dict[str, Session] = {}

    def open(self, credential: str, principal: str) -> tuple[str, Session]:
        """A new session; returns the token for the cookie (never stored here)."""
        token = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(24), self._clock() + self.lifetime,
                          seal(token, credential))
        self._prune()
        self._by_hash[_digest(token)] = session
        return token, session

    def find(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_hash.get(_digest(token))
        if session is None:
            return None
        if session.expires_at <= self._clock():
            self._by_hash.pop(_digest(token), None)
            return None
        return session

    def close(self, token: str | None) -> Session | None:
        return self._by_hash.pop(_digest(token), None) if token else None

    def _prune(self) -> None:
        now = self._clock()
        for digest in [d for d, s in self._by_hash.items() if s.expires_at <= now]:
            del self._by_hash[digest]
        while len(self._by_hash) >= MAX_SESSIONS:
            del self._by_hash[next(iter(self._by_hash))]


def csrf_matches(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode("utf-8", "replace"))


def seal(token: str, secret: str) -> bytes:
    data = secret.encode()
    return bytes(a ^ b for a, b in zip(data, _keystream(token, len(data)), strict=True))


def unseal(token: str, sealed: bytes) -> str:
    return bytes(a ^ b for a, b in zip(sealed, _keystream(token, len(sealed)), strict=True)).decode(
        "utf-8", "replace")


def _keystream(token: str, size: int) -> bytes:
    # Each token is 256 random bits used for one session, so the stream is never reused; the domain prefix
    # keeps it unrelated to the digest that indexes the session.
    return hashlib.shake_256(b"crossroads-dashboard-seal\0" + token.encode()).digest(size)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
