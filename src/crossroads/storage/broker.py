"""The broker: state shared by the workers of one `crossroads serve --workers N`, without Redis.

The supervisor (`supervisor.py`) serves it on a Unix socket in its run directory; each worker connects
with a `LocalLink` (`storage/local.py`), which implements the same `Link` interface as Redis does. The
broker holds what Redis would hold — integer counters with expiry, and hashes — in one `MemoryStore`, runs
the Python half of each `Script` atomically (the broker's event loop runs one at a time, as Redis runs one
Lua script at a time), and relays published messages to every subscribed worker.

A worker is alive while its connection is open: its `<ns>:proc:<id>` key exists from its hello until its
connection closes, so the holds of a worker that died (SIGKILL included) stop counting at once.

Frames, both ways: a 4-byte big-endian length, then a msgpack array.
    worker → broker: [request id, op, *arguments]; ops: hello (proc key), script (name, keys, args),
        get (key), set_missing ([(key, value, ttl)]), publish (channel, data), subscribe (channel)
    broker → worker: [request id, ok, value or error text]; and [0, channel, data] for a published message
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from crossroads.storage.link import Script

log = logging.getLogger("crossroads.shared")

HEADER: Final = struct.Struct(">I")
#: Largest frame either side accepts (a health message of a busy worker is a few kilobytes).
MAX_FRAME: Final = 16 * 1024 * 1024
SWEEP_EVERY: Final = 60.0


class MemoryStore:
    """Integer values with optional expiry, and hashes of integers: the `Memory` of `storage/link.py`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._hashes: dict[str, dict[str, int]] = {}

    def _live(self, key: str) -> bool:
        expires = self._expires.get(key)
        if expires is not None and expires <= self._clock():
            self._values.pop(key, None)
            del self._expires[key]
            return False
        return key in self._values

    def get(self, key: str) -> int | None:
        return self._values[key] if self._live(key) else None

    def set(self, key: str, value: int, ttl: float | None = None) -> None:
        self._values[key] = value
        if ttl is None:
            self._expires.pop(key, None)
        else:
            self._expires[key] = self._clock() + ttl

    def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._expires.pop(key, None)
        self._hashes.pop(key, None)

    def exists(self, key: str) -> bool:
        return self._live(key) or bool(self._hashes.get(key))

    def incrby(self, key: str, amount: int) -> int:
        value = (self._values[key] if self._live(key) else 0) + amount
        self._values[key] = value
        return value

    def expire(self, key: str, ttl: float) -> None:
        if self._live(key):
            self._expires[key] = self._clock() + ttl

    def hash(self, key: str) -> dict[str, int]:
        return self._hashes.setdefault(key, {})

    def sweep(self) -> None:
        """Forget expired values and empty hashes."""
        now = self._clock()
        for key in [k for k, t in self._expires.items() if t <= now]:
            self._values.pop(key, None)
            del self._expires[key]
        for key in [k for k, h in self._hashes.items() if not h]:
            del self._hashes[key]


class Broker:
    def __init__(self, path: Path, scripts: Iterable[Script]) -> None:
        self.path = path
        self.memory = MemoryStore()
        self._scripts = {script.name: script for script in scripts}
        self._subscribers: dict[str, set[asyncio.StreamWriter]] = {}
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_FRAME)
        self.path.chmod(0o600)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="crossroads-broker-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            self.memory.sweep()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        proc_key = None
        try:
            while True:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                if size > MAX_FRAME:
                    return
                request = msgspec.msgpack.decode(await reader.readexactly(size))
                number, op, args = request[0], request[1], request[2:]
                if op == "hello":
                    proc_key = str(args[0])
                    self.memory.set(proc_key, 1)
                    continue
                if op == "publish":
                    self._publish(str(args[0]), bytes(args[1]))
                    continue
                if op == "subscribe":
                    self._subscribers.setdefault(str(args[0]), set()).add(writer)
                    continue
                try:
                    reply = [number, True, self._run(op, args)]
                except Exception as exc:  # a bad request answers an error, never kills the broker
                    reply = [number, False, f"{type(exc).__name__}: {exc}"]
                _send(writer, reply)
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError, IndexError, TypeError):
            pass
        finally:
            # The worker is gone (or its connection is): its holds no longer count.
            if proc_key is not None:
                self.memory.delete(proc_key)
            for writers in self._subscribers.values():
                writers.discard(writer)
            writer.close()
            self._connections.discard(task)

    def _run(self, op: str, args: Sequence[Any]) -> Any:
        if op == "script":
            return self._scripts[str(args[0])].python(self.memory, [str(k) for k in args[1]], list(args[2]))
        if op == "get":
            return self.memory.get(str(args[0]))
        if op == "set_missing":
            for key, value, ttl in args[0]:
                if not self.memory.exists(str(key)):
                    self.memory.set(str(key), int(value), ttl)
            return None
        raise ValueError(f"unknown operation {op!r}")

    def _publish(self, channel: str, data: bytes) -> None:
        for writer in list(self._subscribers.get(channel, ())):
            if writer.is_closing():
                continue
            _send(writer, [0, channel, data])


def _send(writer: asyncio.StreamWriter, message: list[Any]) -> None:
    frame = msgspec.msgpack.encode(message)
    writer.write(HEADER.pack(len(frame)) + frame)
