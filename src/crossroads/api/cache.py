"""Response caching, as OpenRouter's (openrouter.ai/docs/guides/features/response-caching): an identical,
deterministic request is answered with the reply stored for it, free, without asking a provider.

- **Opt-in**: off by default. A request opts in with `X-OpenRouter-Cache: true` (and out with `false`); a
  key may opt all its requests in (its `response_cache` setting, `api/keys.py`), and the operator every
  request (`CROSSROADS_RESPONSE_CACHE=on`). The request's header, when sent, decides.
- **Which requests**: requests to the chat-shaped APIs with `temperature` 0 or a `seed` — those whose reply
  a client expects to be the same twice —, streamed or not, and every `/embeddings` request (an embedding
  is deterministic). Only replies that completed successfully are stored.
- **Key**: the API key, the inbound API, whether it streams, and a SHA-256 of the request body exactly as
  sent (property order matters, as on OpenRouter), so keys never share entries.
- **Lifetime**: `X-OpenRouter-Cache-TTL` seconds (1 to 86,400), else `CROSSROADS_RESPONSE_CACHE_TTL`
  (default 300). `X-OpenRouter-Cache-Clear: true` drops the entry before the request is served.
- **A hit** gets a fresh generation id, its `usage` figures zeroed, `X-OpenRouter-Cache-Status: HIT` with
  `-Age` and `-TTL`, and is recorded as a generation charged nothing. A miss that will be stored says `MISS`.
  A stream is stored as the events the client received and replayed as a stream in the same framing: the
  same events, under the new id, with every `usage` in them zeroed.
- **Where**: in memory (least recently used out first, bounded in bytes), or in Redis when the gateway has
  one (`CROSSROADS_REDIS_URL`), shared by every process; a Redis failure reads as a miss.

A request that caching does not concern costs one header lookup and the key's flag: nothing is hashed,
gathered or stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson
from aiohttp import web

from crossroads.api.headers import first as first_header
from crossroads.api.render import JSON
from crossroads.errors import InvalidParameter
from crossroads.ledger.keys import Key
from crossroads.schema.request import ChatRequest

if TYPE_CHECKING:
    from crossroads.storage.redis import RedisLink

log = logging.getLogger("crossroads.cache")

MAX_TTL: Final = 86_400
#: Memory held by the in-process cache's bodies.
MEMORY_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    stored: float  # wall clock
    ttl: int


class Store(Protocol):
    async def get(self, key: str) -> Entry | None: ...
    async def put(self, key: str, entry: Entry) -> None: ...
    async def drop(self, key: str) -> None: ...


class MemoryStore:
    def __init__(self, capacity: int = MEMORY_BYTES) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    async def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stored + entry.ttl <= time.time():
            await self.drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def put(self, key: str, entry: Entry) -> None:
        await self.drop(key)
        self._entries[key] = entry
        self.size += len(entry.body)
        while self.size > self.capacity and self._entries:
            _, old = self._entries.popitem(last=False)
            self.size -= len(old.body)

    async def drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)


class RedisStore:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.prefix = f"{link.ns}:cache:"

    async def get(self, key: str) -> Entry | None:
        try:
            raw = await self.link.client.get(self.prefix + key)
        except Exception as exc:  # a Redis outage is a miss, never a failed request
            self.link.warn(f"response cache unavailable: {exc}")
            return None
        if not isinstance(raw, bytes):
            return None
        stored, ttl, body = raw.split(b"\n", 2)
        return Entry(body, float(stored), int(ttl))

    async def put(self, key: str, entry: Entry) -> None:
        try:
            await self.link.client.set(self.prefix + key, b"%f\n%d\n" % (entry.stored, entry.ttl) + entry.body,
                                       ex=entry.ttl)
        except Exception as exc:
            self.link.warn(f"response cache unavailable: {exc}")

    async def drop(self, key: str) -> None:
        try:
            await self.link.client.delete(self.prefix + key)
        except Exception as exc:
            self.link.warn(f"response cache unavailable: {exc}")


@dataclass(frozen=True, slots=True)
class Lookup:
    """A cacheable request: its key and lifetime, and whether its reply is a stream of events."""

    key: str
    ttl: int
    stream: bool = False


class ResponseCache:
    def __init__(self, store: Store, *, default_on: bool, ttl: int) -> None:
        self.store = store
        self.default_on = default_on
        self.ttl = ttl

    def opted_in(self, key: Key, headers: Mapping[str, str]) -> bool:
        """The request's header decides; without one, its key's setting or the operator's."""
        asked = first_header(headers, "X-OpenRouter-Cache")
        if asked is not None:
            return asked.strip().lower() in ("true", "1")
        return self.default_on or key.record.response_cache

    def lookup(self, api: str, key: Key, body: Any, headers: Mapping[str, str], *, stream: bool = False) \
            -> Lookup | None:
        """The cache key of an eligible request, when it opted in (or its key or the operator did); None
        otherwise."""
        if not self.opted_in(key, headers):
            return None
        return self._lookup(api, key, body, headers, stream)

    def lookup_chat(self, api: str, key: Key, body: Any, chat: ChatRequest, headers: Mapping[str, str]) \
            -> Lookup | None:
        """`lookup` for a chat-shaped request: eligible when deterministic (`temperature` 0 or a `seed`)."""
        if not self.opted_in(key, headers) or not (chat.params.get("temperature") == 0 or "seed" in chat.params):
            return None
        return self._lookup(api, key, body, headers, chat.stream)

    def _lookup(self, api: str, key: Key, body: Any, headers: Mapping[str, str], stream: bool) -> Lookup:
        ttl = self.ttl
        given = first_header(headers, "X-OpenRouter-Cache-TTL")
        if given is not None:
            try:
                ttl = int(given)
            except ValueError:
                ttl = 0
            if not 1 <= ttl <= MAX_TTL:
                raise InvalidParameter("X-OpenRouter-Cache-TTL", f"must be a whole number of seconds from 1 to "
                                                                 f"{MAX_TTL}")
        # The body as decoded, encoded again: the same bytes for the same request, property order kept.
        digest = hashlib.sha256(b"\x00".join((api.encode(), key.hash.encode(), b"stream" if stream else b"",
                                              orjson.dumps(body)))).hexdigest()
        return Lookup(digest, ttl, stream)

    async def find(self, lookup: Lookup, headers: Mapping[str, str]) -> Entry | None:
        """The entry stored for `lookup`; none when the request asks for it to be cleared (it is dropped)."""
        if (first_header(headers, "X-OpenRouter-Cache-Clear") or "").strip().lower() in ("true", "1"):
            await self.store.drop(lookup.key)
            return None
        return await self.store.get(lookup.key)

    async def put(self, lookup: Lookup, body: bytes) -> None:
        await self.store.put(lookup.key, Entry(body, time.time(), lookup.ttl))

    async def put_stream(self, lookup: Lookup, generation_id: str, events: bytes) -> None:
        """A stream's events as the client received them, kept with the id of its generation."""
        await self.put(lookup, generation_id.encode() + b"\n" + events)


def replayed(body: bytes, generation_id: str) -> tuple[bytes, str | None]:
    """A stored reply as a hit returns it — a fresh id, and every figure of its `usage` zero — and the id of
    the generation it came from."""
    reply = orjson.loads(body)
    source = None
    if isinstance(reply, dict):
        source = reply.get("id")
        reply["id"] = generation_id
        if isinstance(reply.get("usage"), dict):
            reply["usage"] = _zeroed(reply["usage"])
    return orjson.dumps(reply), source if isinstance(source, str) else None


def replayed_stream(body: bytes, generation_id: str) -> tuple[bytes, str]:
    """A stored stream as a hit sends it — under the fresh id, every `usage` object in its events zeroed —
    and the id of the generation it came from. Only the `data` lines that carry usage are decoded."""
    source, _, events = body.partition(b"\n")
    events = events.replace(source, generation_id.encode())
    lines = events.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data:") and b'"usage"' in line:
            ending = b"\r" if line.endswith(b"\r") else b""
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            lines[i] = b"data: " + orjson.dumps(_usage_zeroed(data)) + ending
    return b"\n".join(lines), source.decode()


def _usage_zeroed(value: Any) -> Any:
    """`value` with every `usage` object in it, at any depth (a chunk's, `message.usage`, `response.usage`),
    zeroed."""
    if isinstance(value, dict):
        return {k: _zeroed(v) if k == "usage" and isinstance(v, dict) else _usage_zeroed(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_usage_zeroed(v) for v in value]
    return value


def _zeroed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _zeroed(v) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return 0


def hit_reply(entry: Entry, generation_id: str) -> web.Response:
    """A whole reply served from the cache: the stored reply under the hit's generation id (`replayed`), with
    the cache's headers."""
    body, source = replayed(entry.body, generation_id)
    return web.Response(body=body, content_type=JSON, headers={"X-Generation-Id": generation_id,
                                                               **hit_headers(entry, source)})


def hit_headers(entry: Entry, source_id: str | None) -> dict[str, str]:
    headers = {"X-OpenRouter-Cache-Status": "HIT", "X-OpenRouter-Cache-Age": str(int(time.time() - entry.stored)),
               "X-OpenRouter-Cache-TTL": str(entry.ttl)}
    if source_id:
        headers["X-OpenRouter-Cache-Source-Id"] = source_id
    return headers


__all__ = ["Entry", "Lookup", "MemoryStore", "RedisStore", "ResponseCache", "hit_headers", "hit_reply", "replayed",
           "replayed_stream"]
