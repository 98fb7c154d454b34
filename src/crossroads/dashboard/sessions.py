"""Dashboard sessions: opened with the management key or an API key, kept in the database, expiring.

Sessions live in storage (the `dashboard_sessions` table), not in a process: a session opened on one gateway
process is good on every other process and host sharing the database, and closing it ends it everywhere at
once, because every dashboard call reads its row (the dashboard is not on the inference path, so one read
per call is cheap enough, and no cache can serve a session after it is closed).

A session's token lives only in the browser's cookie; storage keeps its SHA-256 (like keys, so a copy of
the table holds no usable token) and the credential it was opened with, sealed with a keystream derived
from the token: only a request carrying the cookie can unseal it. Each session's CSRF token, which every
state-changing call must echo in `X-CSRF-Token` (the double-submit pattern on top of `SameSite=Strict`), is
derived from the token too, so nothing of it is stored.

Expired rows are purged lazily — on each sign-in, and when an expired session is presented — together
with the playground key of an admin session.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from crossroads.errors import NotFound, Unauthorized
from crossroads.ledger.keys import KeyRing
from crossroads.storage.base import SessionRecord, Store

#: How long a session lasts from sign-in; it is not extended by use.
LIFETIME: Final = 12 * 3600.0
ADMIN: Final = "admin"
PLAYGROUND_KEY_NAME: Final = "Dashboard playground"
#: What a sealed secret is, each sealed with a stream of its own: the session's credential, its playground key.
CREDENTIAL: Final = "credential"
PLAYGROUND: Final = "playground"


@dataclass(frozen=True, slots=True)
class Session:
    """A session as a request presents it: the cookie's token and the stored row it unlocks."""

    token: str
    record: SessionRecord

    @property
    def admin(self) -> bool:
        return self.record.principal == ADMIN

    @property
    def principal(self) -> str:
        """"admin", or the hash of the API key the session was opened with."""
        return self.record.principal

    @property
    def expires_at(self) -> float:
        return self.record.expires_at

    @property
    def credential(self) -> str:
        """The secret the session was opened with."""
        return unseal(self.token, self.record.sealed)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class Sessions:
    def __init__(self, store: Store, keys: KeyRing, clock: Callable[[], float] = time.time,
                 lifetime: float = LIFETIME) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self.lifetime = lifetime

    async def open(self, credential: str, principal: str) -> Session:
        """A new session; its token is for the cookie (storage keeps only its hash)."""
        await self.purge()
        token = secrets.token_urlsafe(32)
        now = self._clock()
        record = SessionRecord(_digest(token), principal, seal(token, credential), now, now + self.lifetime)
        await self._store.insert_session(record)
        return Session(token, record)

    async def find(self, token: str | None) -> Session | None:
        if not token:
            return None
        record = await self._store.get_session(_digest(token))
        if record is None:
            return None
        if record.expires_at <= self._clock():
            await self._end(await self._store.delete_session(record.token_hash))
            return None
        return Session(token, record)

    async def close(self, token: str | None) -> Session | None:
        """End a session, on every process; returns it, or None if it had ended already."""
        if not token:
            return None
        record = await self._store.delete_session(_digest(token))
        await self._end(record)
        return Session(token, record) if record else None

    async def purge(self) -> int:
        """Delete the expired sessions and their playground keys; returns how many."""
        records = await self._store.purge_sessions(self._clock())
        for record in records:
            await self._end(record)
        return len(records)

    async def playground(self, session: Session) -> str:
        """An admin session's playground key (management keys cannot ask models): created on first use,
        expiring with the session and deleted when it ends."""
        if session.record.playground is not None:
            return unseal(session.token, session.record.playground, PLAYGROUND)
        secret, key = await self._keys.create(PLAYGROUND_KEY_NAME, expires_at=session.expires_at)
        sealed = seal(session.token, secret, PLAYGROUND)
        if await self._store.attach_playground(session.record.token_hash, sealed, key.hash):
            return secret
        # Another process gave the session its key first, or the session ended meanwhile.
        await self._keys.delete(key.hash)
        again = await self.find(session.token)
        if again is None or again.record.playground is None:
            raise Unauthorized("Sign in to the dashboard first")
        return unseal(again.token, again.record.playground, PLAYGROUND)

    async def _end(self, record: SessionRecord | None) -> None:
        if record is None or record.playground_hash is None:
            return
        # The key may have been made by another process a moment ago, before this one heard of it.
        await self._keys.reload(record.playground_hash)
        with contextlib.suppress(NotFound):  # deleted already, from the keys page
            await self._keys.delete(record.playground_hash)


def csrf_token(token: str) -> str:
    digest = hashlib.sha256(b"crossroads-dashboard-csrf\0" + token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode("utf-8", "replace"))


def seal(token: str, secret: str, purpose: str = CREDENTIAL) -> bytes:
    data = secret.encode()
    return bytes(a ^ b for a, b in zip(data, _keystream(token, purpose, len(data)), strict=True))


def unseal(token: str, sealed: bytes, purpose: str = CREDENTIAL) -> str:
    return bytes(a ^ b for a, b in zip(sealed, _keystream(token, purpose, len(sealed)), strict=True)).decode(
        "utf-8", "replace")


def _keystream(token: str, purpose: str, size: int) -> bytes:
    # Each token is 256 random bits used for one session and each purpose gets its own stream, so no stream
    # seals two secrets; the domain prefix keeps them unrelated to the digest that indexes the session and to
    # the CSRF token.
    return hashlib.shake_256(f"crossroads-dashboard-seal\0{purpose}\0{token}".encode()).digest(size)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
