"""`crossroads serve --workers N`: N gateway processes on one port, supervised.

The supervisor does no request work. Before any worker starts it opens the database once (migrations run
there, not N times at once), creates the first API key on a first start, and checks the catalog. Then:

- **One port.** Where the platform has `SO_REUSEPORT` (Linux, the BSDs, macOS), each worker gets a
  listening socket of its own, bound to the same address, and the kernel spreads new connections over
  them. Elsewhere every worker accepts on one shared listening socket. Either way the supervisor binds
  them (so a busy port is one clear error) and hands each worker its socket as an inherited descriptor.
- **Shared state.** With `CROSSROADS_REDIS_URL`, workers share limits, spend, health and key changes
  through Redis, as separate gateways do. Without it, the supervisor serves a broker on a Unix socket
  (`storage/broker.py`) that holds the same state, and each worker links to it (`storage/local.py`);
  the database (the SQLite file, say) is shared as it is.
- **Restarts.** A worker that exits unasked is started again, after a back-off that doubles with each
  quick failure (0.5 s up to 30 s) so a crash loop does not spin; a worker that ran for a while restarts at
  once. Its spool is taken over as for any gateway process: its shipper finishes its files, and the
  shippers of the other workers store whatever is left (`ledger/shipper.py`).
- **Signals.** SIGTERM or SIGINT: every worker stops accepting, finishes what is in flight (up to
  `CROSSROADS_DRAIN_TIMEOUT`), stores its ledger and exits; then the supervisor. SIGHUP: every worker
  reloads the catalog files (`app.reload_catalog`) without closing a connection.
- **Per-run files.** A fresh run directory holds the broker's socket and `prometheus/`, empty before the
  first worker starts, which workers find in `PROMETHEUS_MULTIPROC_DIR`; it is removed at exit.

Workers run in a session of their own, so a terminal's Ctrl-C reaches only the supervisor, which
stops them in order; a worker whose supervisor is gone stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from crossroads.errors import ConfigError
from crossroads.metrics.directory import process_dead
from crossroads.settings import SHARED_SOCKET_ENV, Settings

log = logging.getLogger("crossroads.supervisor")

#: A worker's inherited listening socket and the pipe it writes `ready` to.
LISTEN_FD_ENV: Final = "CROSSROADS_LISTEN_FD"
READY_FD_ENV: Final = "CROSSROADS_READY_FD"
#: The supervisor's pid, which a worker watches so it does not outlive it.
SUPERVISOR_ENV: Final = "CROSSROADS_SUPERVISOR_PID"
METRICS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
START_TIMEOUT: Final = 60.0
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 30.0
#: A worker that ran this long before exiting is restarted at once, and its failure count cleared.
STABLE_AFTER: Final = 10.0
#: After the drain timeout, how long workers get to store their ledger and close before they are killed.
CLOSE_GRACE: Final = 20.0


class Listeners:
    """The listening sockets: one per worker with SO_REUSEPORT, else one shared by all."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.reuse_port = hasattr(socket, "SO_REUSEPORT")
        self._shared: socket.socket | None = None
        first = self._bind(port)
        self.port: int = first.getsockname()[1]
        if self.reuse_port:
            self._spare: socket.socket | None = first  # the first worker's, bound while the port was chosen
        else:
            self._shared, self._spare = first, None

    def _bind(self, port: int) -> socket.socket:
        infos = socket.getaddrinfo(self.host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(4096)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{port}: {exc.strerror}") from exc
        # Not inheritable: only the worker it is passed to (`pass_fds`) gets it, never a sibling spawned at
        # the same moment — a socket held open by a process that does not accept on it would still take its
        # share of the port's connections and leave them waiting.
        return sock

    def for_worker(self) -> socket.socket:
        """The socket the next worker accepts on; the caller closes its copy once the worker has it, unless it
        is the shared one."""
        if self._shared is not None:
            return self._shared
        if self._spare is not None:
            sock, self._spare = self._spare, None
            return sock
        return self._bind(self.port)

    def release(self, sock: socket.socket) -> None:
        if sock is not self._shared:
            sock.close()

    def close(self) -> None:
        for sock in (self._shared, self._spare):
            if sock is not None:
                sock.close()


@dataclass(slots=True)
class Worker:
    slot: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    failures: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.metrics_dir = run_dir / "prometheus"
        self.broker_path = run_dir / "shared.sock"
        self.listeners: Listeners | None = None
        self.workers = [Worker(slot) for slot in range(settings.workers)]
        self.stopping = asyncio.Event()
        self._keepers: list[asyncio.Task[None]] = []

    # -- workers -------------------------------------------------------------------------------------------

    def _environ(self, listen: socket.socket, ready: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "CROSSROADS_WORKERS": "1",
            LISTEN_FD_ENV: str(listen.fileno()),
            READY_FD_ENV: str(ready),
            SUPERVISOR_ENV: str(os.getpid()),
            METRICS_DIR_ENV: str(self.metrics_dir),
        })
        if not self.settings.redis_url:
            env[SHARED_SOCKET_ENV] = str(self.broker_path)
        return env

    async def _spawn(self, worker: Worker) -> None:
        assert self.listeners is not None
        listen = self.listeners.for_worker()
        read_end, write_end = os.pipe()
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "crossroads", "serve", env=self._environ(listen, write_end),
                pass_fds=(listen.fileno(), write_end), start_new_session=True)
        finally:
            os.close(write_end)
            self.listeners.release(listen)
        worker.started_at = time.monotonic()
        worker.ready.clear()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(read_end, "rb")
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            if (await reader.readline()).strip() == b"ready":
                worker.ready.set()
        finally:
            transport.close()

    async def _keep(self, worker: Worker) -> None:
        """Run the worker in its slot for as long as the supervisor runs, restarting it when it dies."""
        while True:
            process = worker.process
            assert process is not None
            code = await process.wait()
            # Its counters stay in `metrics_dir`; its live gauges (in flight, memory...) leave the view.
            process_dead(process.pid, str(self.metrics_dir))
            if self.stopping.is_set():
                return
            lived = time.monotonic() - worker.started_at
            worker.failures = 0 if lived >= STABLE_AFTER else worker.failures + 1
            delay = min(BACKOFF_FIRST * 2 ** (worker.failures - 1), BACKOFF_MAX) if worker.failures else 0.0
            log.error("worker %d (pid %d) exited with status %s after %.1fs; starting a new one in %.1fs",
                      worker.slot, process.pid, code, lived, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            try:
                await self._spawn(worker)
            except (OSError, ConfigError):
                log.exception("worker %d could not be started", worker.slot)
                worker.process = process  # try again after the next back-off
                worker.started_at = time.monotonic()
                continue
            if worker.process is not None:
                log.info("worker %d restarted as pid %d", worker.slot, worker.process.pid)

    def signal_all(self, sig: int) -> None:
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)

    # -- the run -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.metrics_dir.mkdir()
        self.listeners = Listeners(self.settings.host, self.settings.port)
        await asyncio.gather(*(self._spawn(worker) for worker in self.workers))
        failed = [w for w in self.workers if not w.ready.is_set()]
        if failed:
            raise ConfigError(f"{len(failed)} of {len(self.workers)} workers did not start (see their log above)")
        self._keepers = [asyncio.create_task(self._keep(w), name=f"crossroads-worker-{w.slot}")
                         for w in self.workers]

    async def stop(self) -> None:
        """Drain every worker: SIGTERM, then wait for them to finish in-flight requests and their ledger."""
        self.stopping.set()
        self.signal_all(signal.SIGTERM)
        processes = [w.process for w in self.workers if w.process is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)),
                                   self.settings.drain_timeout + CLOSE_GRACE)
        except TimeoutError:
            log.error("workers did not stop within %.0fs; killing them", self.settings.drain_timeout + CLOSE_GRACE)
            self.signal_all(signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in processes))
        for keeper in self._keepers:
            keeper.cancel()
        if self.listeners is not None:
            self.listeners.close()


async def supervise(settings: Settings, announce: Announce) -> None:
    """Run `settings.workers` workers until SIGTERM or SIGINT."""
    from crossroads.ledger.shared_budget import SCRIPTS as budget_scripts
    from crossroads.ratelimit.redis import SCRIPTS as limit_scripts
    from crossroads.storage.broker import Broker

    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    run_dir = Path(tempfile.mkdtemp(prefix="crossroads-"))
    supervisor = Supervisor(settings, run_dir)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, supervisor.signal_all, signal.SIGHUP)
    broker = None
    try:
        await announce.prepare()
        if not settings.redis_url:
            broker = Broker(supervisor.broker_path, [*budget_scripts, *limit_scripts])
            await broker.start()
        starting = asyncio.create_task(supervisor.start())
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, waiting], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not starting.done():
            starting.cancel()
            if not stop.is_set():
                raise ConfigError(f"the workers did not start within {START_TIMEOUT:.0f}s")
        elif starting.exception() is None:
            assert supervisor.listeners is not None
            announce.ready(supervisor.listeners.port, time.monotonic() - started)
            await stop.wait()
        else:
            raise starting.exception()  # type: ignore[misc]
    finally:
        print("Crossroads: shutting down", flush=True)
        await supervisor.stop()
        if broker is not None:
            await broker.close()
        shutil.rmtree(run_dir, ignore_errors=True)


class Announce:
    """What the supervisor says and does once for all workers: the first API key, the ready banner."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.first_key: str | None = None
        self.models = 0
        self.simulator_default = False
        self.providers: list[str] = []

    async def prepare(self) -> None:
        from crossroads.catalog import loader
        from crossroads.ledger.keys import KeyRing
        from crossroads.routing.plan import simulator_default
        from crossroads.storage.open import open_store

        simulator_url = None
        if self.settings.simulator != "off":  # each worker starts its own; any URL checks the catalog alike
            simulator_url = loader.simulator_base_url(self.settings.environ) or "http://127.0.0.1"
        catalog = loader.load(self.settings.catalog_paths, self.settings.environ, simulator_url=simulator_url)
        self.models = len(catalog.models)
        self.simulator_default = simulator_default(catalog, self.settings.simulator)
        self.providers = sorted(p.name for p in catalog.providers.values() if p.configured and p.slug != "simulator")
        store = await open_store(self.settings.database_url)  # migrations run here, once
        try:
            keys = KeyRing(store, self.settings.admin_key)
            await keys.load()
            if len(keys) == 0:
                self.first_key, _ = await keys.create("default")
        finally:
            await store.close()

    def ready(self, port: int, seconds: float) -> None:
        from crossroads.cli import banner

        banner(self.settings.host, port, seconds, workers=self.settings.workers, models=self.models,
               simulator_default=self.simulator_default, providers=self.providers, first_key=self.first_key)


# -- the worker's side -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handover:
    """What a supervisor hands a worker: its listening socket, and the pipe to say it is ready on."""

    listener: socket.socket
    ready_fd: int | None

    @classmethod
    def inherited(cls) -> Handover | None:
        """Take them over, if this process is a worker. Call before starting any process (the shipper):
        they were inherited, so a process started now would inherit them too, and hold the socket and
        the pipe open after this worker is gone."""
        fd = os.environ.pop(LISTEN_FD_ENV, None)
        if not fd:
            return None
        listener = socket.socket(fileno=int(fd))
        listener.set_inheritable(False)
        ready = os.environ.pop(READY_FD_ENV, None)
        if ready:
            os.set_inheritable(int(ready), False)
        return cls(listener, int(ready) if ready else None)

    def ready(self) -> None:
        """Tell the supervisor this worker accepts requests."""
        if self.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.ready_fd, b"ready\n")
                os.close(self.ready_fd)


async def watch_supervisor(stop: asyncio.Event, every: float = 1.0) -> None:
    """Stop this worker if its supervisor is gone (its parent changed)."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor:
        return
    while not stop.is_set():
        if os.getppid() != int(supervisor):
            log.error("the supervisor is gone; stopping")
            stop.set()
            return
        await asyncio.sleep(every)
