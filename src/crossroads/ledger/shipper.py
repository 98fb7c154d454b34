"""The shipper: a separate process that moves generation records from the spool into the database.

Each gateway process starts one (`python -m crossroads.ledger.shipper`). Every `interval` seconds, or at
once when asked, it reads the new complete lines of its gateway's spool files, inserts them in one batch
(idempotent by generation id, retried with backoff on a database error), and deletes each file its
gateway has finished once every record in it is stored. It also takes over the files of gateway
processes that are gone (every one of their files unlocked), which is how generations spooled by a
process killed with SIGKILL reach the ledger.

Why a process and not a thread or the event loop: database writes cost tens of microseconds per record in
Python, and a writer thread contends for the GIL with the event loop (stalls of up to the interpreter's
5 ms switch interval land on requests in flight). In its own process the work costs the gateway nothing
but a memory copy per record.

With `CROSSROADS_OTLP_ENDPOINT` set, the records of each stored batch also become trace spans, exported
over OTLP/HTTP in the background (`ledger/traces.py`); an export failure never holds up or loses records.

Protocol with the gateway, one line each way: the gateway writes an empty line to ask for a pass now, and
closes stdin to ask the shipper to finish (ship what remains, then exit); the shipper writes `ready` after
its first pass, `<file> <offset>` when a file's records are stored up to `offset`, and `<file> done` when
it deleted the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from crossroads import logs
from crossroads.ledger.spool import Position, Spool, locked, read_lines, tag_of
from crossroads.storage.base import GenerationRecord, Store
from crossroads.storage.open import open_store

if TYPE_CHECKING:
    from crossroads.ledger.traces import Traces

log = logging.getLogger("crossroads.ledger")

DATABASE_ENV = "CROSSROADS_DATABASE_URL"
#: Set (to a collector's URL), the shipper exports traces of the generations it stores.
TRACES_ENV = "CROSSROADS_OTLP_ENDPOINT"
#: How long a gateway waits for its records to be stored when it needs them to be (a `/key` read).
SYNC_TIMEOUT = 5.0


# -- the shipper process ---------------------------------------------------------------------------------------


class _Ship:
    def __init__(self, directory: Path, store: Store, tag: str, traces: Traces | None = None) -> None:
        self.directory = directory
        self.store = store
        self.tag = tag
        self.traces = traces
        self.offsets: dict[str, int] = {}

    def files(self) -> list[Path]:
        """This gateway's files, then those of gateways that are gone, oldest first."""
        by_tag = _by_tag(self.directory)
        return by_tag.pop(self.tag, []) + _unlocked(by_tag)

    async def once(self) -> list[str]:
        """One pass; returns the progress lines to report."""
        batch: list[GenerationRecord] = []
        advanced: dict[str, int] = {}
        finished: list[Path] = []
        for path in self.files():
            final = not locked(path)
            try:
                records, offset, bad = read_lines(path, self.offsets.get(path.name, 0), final)
            except FileNotFoundError:
                continue
            if bad:
                log.warning("ledger: %d unreadable line(s) in %s (a writer died mid-record); skipped", bad, path.name)
            batch.extend(records)
            if offset != self.offsets.get(path.name, 0):
                advanced[path.name] = offset
            if final:
                finished.append(path)
        delay = 0.1
        while batch:
            try:
                await self.store.write_generations(batch)
                break
            except Exception:
                log.warning("ledger: storing %d records failed; retrying in %.1fs", len(batch), delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if batch and self.traces is not None:
            self.traces.export(batch)  # queued; a background thread sends them
        lines = []
        for file, offset in advanced.items():
            self.offsets[file] = offset
            lines.append(f"{file} {offset}")
        for path in finished:
            path.unlink(missing_ok=True)
            self.offsets.pop(path.name, None)
            lines.append(f"{path.name} done")
        return lines


def unclaimed(directory: Path, tag: str) -> list[Path]:
    """The spool files that gateway processes now gone left behind (all of a process's files unlocked),
    but for those of the process tagged `tag`; oldest first."""
    by_tag = _by_tag(directory)
    by_tag.pop(tag, None)
    return _unlocked(by_tag)


def _by_tag(directory: Path) -> dict[str, list[Path]]:
    """The spool's files by the tag of the process that wrote them, each process's oldest first."""
    by_tag: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(directory.glob("*.jsonl")):
        by_tag[tag_of(path.name)].append(path)
    return by_tag


def _unlocked(by_tag: Mapping[str, list[Path]]) -> list[Path]:
    return [path for paths in by_tag.values() if not any(locked(p) for p in paths) for path in paths]


def _traces() -> Traces | None:
    """Tracing as the environment configures it; a configuration the SDK refuses is logged, not fatal."""
    if not os.environ.get(TRACES_ENV):
        return None  # the OpenTelemetry SDK is not even imported
    try:
        from crossroads.ledger.traces import Traces

        return Traces.from_environ(os.environ)
    except Exception:
        log.error("traces: could not set up the OTLP exporter; generations are stored but not traced", exc_info=True)
        return None


async def _serve(directory: Path, url: str, tag: str, interval: float) -> None:
    store = await open_store(url)
    traces = _traces()
    ship = _Ship(directory, store, tag, traces)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    wake = asyncio.Event()
    stopping = asyncio.Event()

    async def listen() -> None:
        while True:
            line = await reader.readline()
            if not line:  # the gateway closed stdin (or is gone): finish
                stopping.set()
                wake.set()
                return
            wake.set()

    listener = asyncio.create_task(listen())
    out: TextIO | None = sys.stdout
    first = True
    try:
        while True:
            lines = await ship.once()
            if first:
                lines.append("ready")
                first = False
            if lines and out is not None:
                try:
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                except BrokenPipeError:  # the gateway is gone (killed): finish storing its records anyway
                    out = None
                    stopping.set()
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush has somewhere to go
                    os.close(devnull)
            # Blocking file I/O is this process's whole job; nothing else waits on its loop.
            if stopping.is_set() and not any(tag_of(p.name) == tag
                                             for p in directory.glob("*.jsonl")):  # noqa: ASYNC240
                return
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            if stopping.is_set():
                await asyncio.sleep(0.01)  # the gateway closes its last file right after stdin
    finally:
        listener.cancel()
        await store.close()
        if traces is not None:
            traces.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Move generation records from a spool to the database.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("tag")
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args(argv)
    url = os.environ[DATABASE_ENV]
    logs.configure(os.environ.get("CROSSROADS_LOG_LEVEL", "INFO"), os.environ.get("CROSSROADS_LOG_FORMAT") == "json")
    log.debug("ledger shipper started for %s (spool %s)", args.directory, args.tag)
    # Storing records can wait a moment; a request in flight on the gateway cannot. Where the two share a
    # CPU, the scheduler should prefer the gateway:
    # SCHED_IDLE: run only when the CPU has nothing else to do; preempted at once when the gateway wakes.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(19)
    try:
        import uvloop

        uvloop.run(_serve(args.directory, url, args.tag, args.interval))
    except ImportError:
        asyncio.run(_serve(args.directory, url, args.tag, args.interval))


# -- the gateway's side ----------------------------------------------------------------------------------------


class Shipper:
    """Starts and talks to the shipper process for one gateway process's spool."""

    def __init__(self, spool: Spool, database_url: str, interval: float = 0.05, *, log_level: str = "INFO",
                 log_json: bool = False, environ: Mapping[str, str] | None = None) -> None:
        self.spool = spool
        self._url = database_url
        #: More of the process's environment: its tracing configuration (`Settings.tracing_environ`).
        self._environ = dict(environ or {})
        #: The shipper logs as the gateway does (level and text/JSON lines).
        self._log_env = {"CROSSROADS_LOG_LEVEL": log_level, "CROSSROADS_LOG_FORMAT": "json" if log_json else "text"}
        self._interval = interval
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._shipped: dict[str, int] = {}
        self._done: set[str] = set()
        self._progress = asyncio.Event()
        self._ready = asyncio.Event()
        self._closing = False
        #: Waits for the first pass when `start` did not.
        self._starting: asyncio.Task[None] | None = None
        #: Spool positions as `backlog()` saw them, with when: the oldest not yet shipped dates the lag.
        self._marks: deque[tuple[Position, float]] = deque()

    async def start(self, wait: float = 30.0) -> None:
        """Start the process. Where gateway processes that are gone left records in the spool, wait for its
        first pass, which stores them, so that no spend read after this misses them; else the gateway goes
        on while the shipper starts (a fifth of a second or more of start-up saved), and this gateway's
        first records wait in the spool for its first pass. Either way a shipper not ready within `wait`
        seconds is an error: at start in the first case, logged in the second."""
        leftovers = unclaimed(self.spool.directory, self.spool.tag)
        await self._spawn()
        if leftovers:
            if not await self.started(wait):
                raise RuntimeError("the ledger shipper did not start")
        else:
            self._starting = asyncio.create_task(self._expect_ready(wait), name="crossroads-ledger-shipper-start")

    async def started(self, within: float = SYNC_TIMEOUT) -> bool:
        """Wait until the process has made its first pass (`start` may not have waited for it); False if that
        took more than `within` seconds."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            return False
        return True

    async def _expect_ready(self, wait: float) -> None:
        if not await self.started(wait):
            log.error("ledger shipper did not start within %gs; finished generations wait in the spool", wait)

    async def _spawn(self) -> None:
        env = {**os.environ, **self._environ, **self._log_env, DATABASE_ENV: self._url}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crossroads.ledger.shipper", str(self.spool.directory), self.spool.tag,
            "--interval", str(self._interval),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.create_task(self._read(self._process), name="crossroads-ledger-shipper")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            file, _, value = raw.decode().strip().partition(" ")
            if file == "ready":
                self._ready.set()
            elif value == "done":
                self._done.add(file)
                self._shipped.pop(file, None)
            elif value:
                self._shipped[file] = int(value)
            self._progress.set()
        code = await process.wait()
        if not self._closing:
            log.error("ledger shipper exited (status %s); starting a new one", code)
            await asyncio.sleep(0.5)
            if not self._closing:  # the gateway may have begun to close meanwhile
                await self._spawn()

    def shipped(self, position: Position) -> bool:
        return position.file in self._done or self._shipped.get(position.file, 0) >= position.offset

    def backlog(self) -> tuple[int, float]:
        """Bytes of the spool file being written that are not yet stored, and how long the oldest record
        not yet stored has waited (as sampled by the calls to this method, one a second)."""
        position = self.spool.position
        now = time.monotonic()
        marks = self._marks
        if not marks or marks[-1][0] != position:
            marks.append((position, now))
        while marks and self.shipped(marks[0][0]):
            marks.popleft()
        behind = 0 if self.shipped(position) else position.offset - self._shipped.get(position.file, 0)
        return behind, now - marks[0][1] if marks else 0.0

    async def synced(self, within: float = SYNC_TIMEOUT) -> bool:
        """Wait until every record spooled so far is in the database; False if that took too long."""
        target = self.spool.position
        deadline = time.monotonic() + within
        while not self.shipped(target):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            self._poke()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(remaining, 0.5))
        return True

    def _poke(self) -> None:
        process = self._process
        if process is not None and process.stdin is not None and not process.stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                process.stdin.write(b"\n")

    async def close(self, within: float = 15.0) -> None:
        """Release the spool and let the shipper store what remains, then stop it."""
        self._closing = True
        self.spool.close()
        if self._starting is not None:
            self._starting.cancel()
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), within)
        except TimeoutError:
            log.error("ledger shipper did not finish in %.0fs; what it did not store stays in the spool", within)
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


if __name__ == "__main__":
    main()
