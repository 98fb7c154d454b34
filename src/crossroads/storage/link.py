"""The link to state shared by several gateway processes, whichever carries it.

Two links implement `Link`: `storage/redis.py` (Redis, for processes on any number of machines) and
`storage/local.py` (the broker a `crossroads serve --workers N` supervisor runs, `storage/broker.py`, for
the workers of one machine without Redis). The shared budget, the shared rate limiter, health sharing and
key-change announcements are written against this interface only.

A `Script` is one atomic operation on the shared state, written twice: in Lua for Redis (`EVALSHA`), and
in Python over a `Memory` for the broker. Both see the same keys and arguments and return the same values;
the tests of each user run against both links.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class SharedStateError(Exception):
    """The shared state could not be reached or answered with an error."""


class Memory(Protocol):
    """The subset of Redis's data model the Python halves of scripts use (values are integers)."""

    def get(self, key: str) -> int | None: ...
    def set(self, key: str, value: int, ttl: float | None = None) -> None: ...
    def exists(self, key: str) -> bool: ...
    def incrby(self, key: str, amount: int) -> int: ...
    def expire(self, key: str, ttl: float) -> None: ...
    def hash(self, key: str) -> dict[str, int]:
        """The hash stored at `key` (created empty when missing); changed in place."""
        ...


@dataclass(frozen=True, slots=True)
class Script:
    #: The name the broker knows it by.
    name: str
    #: Redis's version: KEYS and ARGV as in `EVAL`.
    lua: str
    #: The broker's version: (memory, keys, args) → the same reply as the Lua version.
    python: Callable[[Memory, Sequence[str], Sequence[Any]], Any]


Subscriber = Callable[[bytes], Awaitable[None] | None]


class Link(Protocol):
    #: Prefix of every key and channel.
    ns: str
    #: This process's id; `proc_prefix + process_id` exists while this process is alive.
    process_id: str

    @property
    def proc_prefix(self) -> str: ...

    def script(self, script: Script) -> Callable[..., Awaitable[Any]]:
        """`await run(keys=[...], args=[...])`; errors become SharedStateError."""
        ...

    async def get_int(self, key: str) -> int | None: ...

    async def set_missing(self, values: Sequence[tuple[str, int, int | None]]) -> None:
        """Set each (key, value, ttl seconds or None) that does not exist yet."""

    async def publish(self, channel: str, data: bytes) -> None: ...

    def subscribe(self, channel: str, receive: Subscriber) -> None:
        """Call `receive` with every message published on `channel` (by any process, this one included)
        for the life of the link, reconnecting after errors."""

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background task for the life of the link; a task that dies is logged."""

    def warn(self, message: str) -> None:
        """Log a degradation, at most once a minute."""
