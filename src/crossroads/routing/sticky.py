"""Sticky routing: the requests of one conversation go to the endpoint that served it last, while that
endpoint is healthy, so the provider's prompt cache — which lives on one provider's side — keeps hitting.

As OpenRouter describes it (openrouter.ai/docs/guides/best-practices/prompt-caching): a conversation is
named by `session_id` (or the `X-Session-Id` header), else `user`, else `prompt_cache_key`, else a hash of
its first system message and its first other message — the prefix every later turn repeats. The key also
holds the account (the API key) and the model, so conversations never share an entry across keys. A success
(re)sets the entry — for a conversation named only by its prefix, a success whose provider reported cached
prompt tokens (otherwise every identical request of a key would stick to one endpoint, and load balancing
would end) —; it expires after 10 minutes without one; a failure does not change it, and an endpoint that
is failing is not preferred. `provider.order` and an explicit `provider.sort` take precedence: such
requests are not made sticky.

The table is bounded (least recently used entries leave first) and kept in memory per process.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

import orjson

from crossroads.schema.request import ChatRequest

#: OpenRouter's: stickiness lapses after 10 minutes of inactivity.
TTL_SECONDS: Final = 600.0
CAPACITY: Final = 100_000


def conversation_of(request: ChatRequest, account: str) -> tuple[str, bool]:
    """The sticky key of a request's conversation for `account` and its first model, and whether the request
    names it (a session, a user, a cache key) rather than it being known by its prefix."""
    name = request.session_id or request.headers.get("x-session-id") or request.user \
        or request.params.get("prompt_cache_key")
    named = name is not None
    if name is None:
        first_system = next((m for m in request.messages if m.get("role") in ("system", "developer")), None)
        first_other = next((m for m in request.messages if m.get("role") not in ("system", "developer")), None)
        name = "prefix:" + hashlib.blake2b(orjson.dumps([first_system, first_other]), digest_size=16).hexdigest()
    return f"{account}\x00{request.model}\x00{name}", named


class Sticky:
    """Conversation key → the endpoint key that last served it, with expiry and a bound on entries."""

    def __init__(self, ttl: float = TTL_SECONDS, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, conversation: str) -> str | None:
        entry = self._entries.get(conversation)
        if entry is None:
            return None
        endpoint, expires = entry
        if expires <= self.clock():
            del self._entries[conversation]
            return None
        return endpoint

    def remember(self, conversation: str, endpoint: str) -> None:
        entries = self._entries
        entries[conversation] = (endpoint, self.clock() + self.ttl)
        entries.move_to_end(conversation)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["CAPACITY", "TTL_SECONDS", "Sticky", "conversation_of"]
