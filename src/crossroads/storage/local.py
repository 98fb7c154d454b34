"""The link of a worker of `crossroads serve --workers N` to its supervisor's broker (`storage/broker.py`).

Implements `Link` (`storage/link.py`) over the broker's Unix socket, so the shared budget, rate limits,
health and key changes work between the workers of one machine as they do through Redis between machines,
with the same round trips (leases and batched flushes; one per rate-limited request). Requests are
pipelined on one connection, matched to their replies by number. If the connection breaks, calls raise
`SharedStateError` — the users fall back to this process's own figures, as on a Redis outage — and the link
reconnects in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from crossroads.errors import ConfigError
from crossroads.storage.broker import HEADER, MAX_FRAME
from crossroads.storage.link import Script, SharedStateError, Subscriber

log = logging.getLogger("crossroads.shared")

CALL_TIMEOUT: Final = 2.0
RECONNECT_EVERY: Final = 0.5
WARN_EVERY: Final = 60.0


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped", task.get_name(), exc_info=task.exception())


class LocalLink:
    def __init__(self, path: Path, namespace: str = "cr") -> None:
        self.path = path
        self.ns = namespace
        self.process_id = uuid.uuid4().hex[:16]
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._number = 0
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._warned_at = 0.0
        self._closing = False

    @property
    def proc_prefix(self) -> str:
        return f"{self.ns}:proc:"

    async def open(self) -> None:
        try:
            await self._connect()
        except OSError as exc:
            raise ConfigError(f"cannot reach the supervisor's broker at {self.path}: {exc}") from exc

    async def _connect(self) -> None:
        reader, writer = await asyncio.open_unix_connection(str(self.path), limit=MAX_FRAME)
        self._writer = writer
        self._send([0, "hello", self.proc_prefix + self.process_id])
        for channel in self._subscribers:
            self._send([0, "subscribe", channel])
        self.spawn(self._read(reader, writer), "crossroads-broker-link")

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                number, second, third = msgspec.msgpack.decode(await reader.readexactly(size))
                if number == 0:
                    for receive in self._subscribers.get(second, ()):
                        self._deliver(receive, third)
                    continue
                future = self._pending.pop(number, None)
                if future is not None and not future.done():
                    if second:
                        future.set_result(third)
                    else:
                        future.set_exception(SharedStateError(third))
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError, ValueError):
            pass
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(SharedStateError("the connection to the broker closed"))
            self._pending.clear()
        if not self._closing:
            self.warn("the connection to the broker closed; reconnecting")
            self.spawn(self._reconnect(), "crossroads-broker-reconnect")

    async def _reconnect(self) -> None:
        while not self._closing:
            await asyncio.sleep(RECONNECT_EVERY)
            with contextlib.suppress(OSError):
                await self._connect()
                return

    def _deliver(self, receive: Subscriber, data: bytes) -> None:
        """Hand a message to a subscriber; one that waits (a key reload reads storage) runs as a task, so
        replies to requests in flight are not held up behind it."""
        try:
            result = receive(data)
        except Exception:
            log.exception("a subscriber failed on a message")
            return
        if result is not None:
            task = asyncio.ensure_future(result)
            task.add_done_callback(_report)

    def _send(self, message: list[Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise SharedStateError("not connected to the broker")
        frame = msgspec.msgpack.encode(message)
        writer.write(HEADER.pack(len(frame)) + frame)

    async def _call(self, op: str, *args: Any) -> Any:
        self._number += 1
        number = self._number
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            self._send([number, op, *args])
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        except TimeoutError:
            raise SharedStateError(f"the broker did not answer {op} in {CALL_TIMEOUT}s") from None
        finally:
            self._pending.pop(number, None)

    # -- Link ------------------------------------------------------------------------------------------------

    def script(self, script: Script) -> Callable[..., Awaitable[Any]]:
        async def run(keys: list[str], args: list[Any]) -> Any:
            return await self._call("script", script.name, keys, args)

        return run

    async def get_int(self, key: str) -> int | None:
        value = await self._call("get", key)
        return None if value is None else int(value)

    async def set_missing(self, values: Sequence[tuple[str, int, int | None]]) -> None:
        await self._call("set_missing", [list(v) for v in values])

    async def publish(self, channel: str, data: bytes) -> None:
        self._send([0, "publish", channel, data])

    def subscribe(self, channel: str, receive: Subscriber) -> None:
        self._subscribers.setdefault(channel, []).append(receive)
        with contextlib.suppress(SharedStateError):  # sent again on reconnection
            self._send([0, "subscribe", channel])

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        task.add_done_callback(_report)
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(task)

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("broker unavailable, using per-process state: %s", message)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


