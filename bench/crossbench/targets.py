"""The systems under test, each started on CPU 0 against one mock reply profile at a time.

``direct``        the client talks to the mock itself: the floor every other target is compared with
``passthrough``   bench/passthrough.py, a minimal aiohttp forwarding proxy: what Python can do at all
``crossroads``    `crossroads serve` on its embedded defaults (SQLite in a temporary directory)
``crossroads-pg`` the same with PostgreSQL (a scratch database) and Redis
``crossroads-nometrics``  `crossroads` with `CROSSROADS_METRICS=off`: what the metrics cost (only when
                  named in `--targets`)
``litellm``       LiteLLM's proxy, one worker, no database, from its own virtual environment
``passthrough-2`` the passthrough as two processes on one port (`--processes 2`), on both CPUs
``crossroads-2w`` `crossroads serve --workers 2` on its embedded defaults, on both CPUs: its scaling from
                  one worker is read against the passthrough's from one process to two, since the load
                  generator and the mock share the two CPUs with them

Nothing is switched off for the benchmark: Crossroads authenticates a real API key (created with
`crossroads keys create`, with a spend limit so that every request is reserved and settled against it),
validates, routes, accounts usage and writes the ledger. Its catalog file adds a provider `benchmock`
(wire format openai_chat, `api_key_env`, the key given in the environment) and a model `bench/model`.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from crossbench import fixtures, procstat
from crossbench.mock import Mock, api_path, free_port

TARGET_CPU = 0
#: Where the multi-process targets run: both CPUs, shared with the load generator and the mock.
ALL_CPUS = "0,1"
BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent

#: Pinned LiteLLM release. 1.106.12 is the newest release whose `[proxy]` extra installs from the package
#: index this suite was built against: 1.108 and later pin `litellm-proxy-extras` builds that were not
#: published there, and 1.110 moved the proxy into a separate `litellm-proxy` package. Never 1.82.7 or
#: 1.82.8 (published with malware) nor 1.107.0 (reported compromised).
LITELLM_VERSION = "1.106.12"
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"
UPSTREAM_KEY = "bench-upstream-key"

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_DATABASE = "crossroads_bench"
REDIS_URL = "redis://127.0.0.1:6379/15"

#: Variables of the calling environment that would change how a target behaves; never passed on.
_SCRUB_PREFIXES = ("CROSSROADS_", "LITELLM_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_", "DATABASE_URL", "REDIS_")


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and not k.endswith("_API_KEY")}


class TargetUnavailable(RuntimeError):
    """The target cannot run on this machine (reason in the message); the suite skips it."""


def post(url: str, body: bytes, key: str | None, timeout: float = 5.0) -> int:
    """POST `body` and read the whole reply; the status, or 0 when the connection failed."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    except OSError:
        return 0
    finally:
        connection.close()


@dataclass
class Start:
    """How one start went: seconds from spawn to the first served chat completion, and RSS once idle."""

    seconds: float
    idle_rss_kb: int


@dataclass
class Target:
    """A system under test. Subclasses say how to spawn it; this class runs, probes and stops it."""

    name: str
    workdir: Path
    key: str | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: The inbound API the current scenario calls (see `apis`).
    api: str = "chat"
    #: The inbound APIs a target serves: `chat` (Chat Completions), `responses` (the Responses API).
    apis: ClassVar[tuple[str, ...]] = ("chat",)
    #: The mock profile it was last started against (which says the API path: chat or embeddings).
    profile: str = "json"
    #: The CPUs it runs on (`taskset -c`): CPU 0, or both for the multi-process targets.
    cpus: str = str(TARGET_CPU)

    # -- what subclasses provide ---------------------------------------------------------------------

    def prepare(self) -> None:
        """One-time setup before the first start (databases, keys, virtual environments)."""

    def command(self, upstream: str) -> list[str]:
        raise NotImplementedError

    def environ(self) -> dict[str, str]:
        return clean_environ()

    @property
    def path(self) -> str:
        if self.api in ("responses", "messages"):
            return f"/api/v1/{self.api}"
        return "/api/v1" + api_path(self.profile)

    def finish(self) -> None:
        """Clean-up after the last stop."""

    def helpers(self) -> list[int]:
        """Processes outside the target's own tree that serve it (a database), measured separately."""
        return []

    # -- running -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, mock: Mock, profile: str, probe: bytes, timeout: float = 120.0) -> Start:
        """Spawn on its CPUs against the mock's `profile`; return once a chat completion has succeeded."""
        self.port = free_port()
        self.profile = profile
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / f"{self.name}.log"
        command = ["taskset", "-c", self.cpus, *self.command(mock.url(profile))]
        with open(self.log, "ab") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            spawned = time.perf_counter()
            self.process = subprocess.Popen(command, cwd=self.workdir, env=self.environ(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = spawned + timeout
        status = 0
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} on start; see {self.log}")
            status = post(self.url, probe, self.key)
            if status == 200:
                seconds = time.perf_counter() - spawned
                time.sleep(1.0)
                return Start(seconds, procstat.rss_kb(procstat.tree(self.pid)))
            time.sleep(0.01 if status == 0 else 0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not serve a chat completion within {timeout:.0f} s "
                           f"(last status {status}); see {self.log}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Direct(Target):
    """The mock itself; nothing to start. Its CPU and memory figures are the mock's."""

    def __init__(self, workdir: Path) -> None:
        super().__init__("direct", workdir)
        self.mock: Mock | None = None
        self.profile = ""

    @property
    def url(self) -> str:
        assert self.mock is not None
        return self.mock.url(self.profile) + api_path(self.profile)

    @property
    def pid(self) -> int:
        assert self.mock is not None
        return self.mock.pid

    def start(self, mock: Mock, profile: str, probe: bytes, timeout: float = 120.0) -> Start:
        self.mock, self.profile = mock, profile
        if post(self.url, probe, None) != 200:
            raise RuntimeError(f"the mock does not answer on {self.url}")
        return Start(0.0, procstat.rss_kb([mock.pid]))

    def stop(self) -> None:
        self.mock = None


class Passthrough(Target):
    def __init__(self, workdir: Path, processes: int = 1) -> None:
        super().__init__("passthrough" if processes == 1 else f"passthrough-{processes}", workdir)
        self.processes = processes
        if processes > 1:
            self.cpus = ALL_CPUS

    def command(self, upstream: str) -> list[str]:
        return [sys.executable, str(BENCH_DIR / "passthrough.py"), "--port", str(self.port),
                "--upstream", upstream, "--prefix", "/api/v1", "--processes", str(self.processes)]


class Crossroads(Target):
    """`crossroads serve` from the project's environment, configured only through its environment."""

    apis = ("chat", "responses", "messages")

    def __init__(self, name: str, workdir: Path, *, postgres: bool, source: Path | None = None,
                 workers: int = 1, metrics: bool = True) -> None:
        super().__init__(name, workdir)
        self.postgres = postgres
        self.metrics = metrics
        self.workers = workers
        if workers > 1:
            self.cpus = ALL_CPUS
        self.upstream = ""
        #: A copy of src/ taken when the run began: every start runs the same code even if the working
        #: tree changes meanwhile. None: whatever `import crossroads` finds.
        self.source = source

    def executable(self) -> list[str]:
        """The `crossroads` command (`python -m crossroads`, which the snapshot's PYTHONPATH steers)."""
        return [sys.executable, "-m", "crossroads"]

    def database_url(self) -> str:
        if self.postgres:
            return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
        return f"sqlite:///{self.workdir / 'crossroads.db'}"

    def catalog(self, upstream: str) -> Path:
        path = self.workdir / "catalog.toml"
        path.write_text(f"""# Benchmark catalog: one provider, the nginx mock, serving one model.
[providers.benchmock]
name = "BenchMock"
wire_format = "openai_chat"
base_url = "{upstream}"
api_key_env = "BENCHMOCK_API_KEY"

[models."{fixtures.MODEL}"]
name = "Benchmark model"
context_length = 131072

[[models."{fixtures.MODEL}".endpoints]]
provider = "benchmock"
upstream_model = "{fixtures.UPSTREAM_MODEL}"
pricing = {{ prompt = "1", completion = "2" }}

# The same mock in Anthropic's Messages format (its root URL: that format appends /v1/messages).
[providers.benchmock-messages]
name = "BenchMock Messages"
wire_format = "anthropic_messages"
base_url = "{upstream.removesuffix("/v1")}"
api_key_env = "BENCHMOCK_API_KEY"

[models."{fixtures.MESSAGES_MODEL}"]
name = "Benchmark model (Messages format)"
context_length = 131072

[[models."{fixtures.MESSAGES_MODEL}".endpoints]]
provider = "benchmock-messages"
upstream_model = "{fixtures.UPSTREAM_MODEL}"
pricing = {{ prompt = "1", completion = "2" }}

[models."{fixtures.EMBED_MODEL}"]
name = "Benchmark embedding model"
context_length = 8192
output_modalities = ["embeddings"]

[[models."{fixtures.EMBED_MODEL}".endpoints]]
provider = "benchmock"
upstream_model = "{fixtures.EMBED_UPSTREAM_MODEL}"
pricing = {{ prompt = "0.02", completion = "0" }}
""")
        return path

    def environ(self) -> dict[str, str]:
        env = clean_environ()
        env.update({
            "CROSSROADS_HOST": "127.0.0.1",
            "CROSSROADS_PORT": str(self.port),
            "CROSSROADS_DATABASE_URL": self.database_url(),
            "CROSSROADS_SIMULATOR": "off",
            "CROSSROADS_CATALOG": str(self.catalog(self.upstream or "http://127.0.0.1:9/v1")),
            "CROSSROADS_SPOOL_DIR": str(self.workdir / "spool"),
            "BENCHMOCK_API_KEY": UPSTREAM_KEY,
            "CROSSROADS_WORKERS": str(self.workers),
        })
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        if self.postgres:
            env["CROSSROADS_REDIS_URL"] = REDIS_URL
        if not self.metrics:
            env["CROSSROADS_METRICS"] = "off"
        return env

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.postgres:
            _postgres_scratch(create=True)
            _redis_flush()
        done = subprocess.run([*self.executable(), "keys", "create", "--name", "bench", "--limit", "1000000"],
                              cwd=self.workdir, env=self.environ(), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise TargetUnavailable(f"`crossroads keys create` failed: {done.stderr.strip()[-500:]}")
        self.key = done.stdout.strip().splitlines()[-1]

    def command(self, upstream: str) -> list[str]:
        self.upstream = upstream
        return [*self.executable(), "serve"]

    def helpers(self) -> list[int]:
        # Every PostgreSQL and Redis process on the machine: the figure includes their background work.
        return procstat.named("postgres", "redis-server") if self.postgres else []

    def finish(self) -> None:
        if self.postgres:
            _postgres_scratch(create=False)
            _redis_flush()


class LiteLLM(Target):
    """LiteLLM's proxy from bench/.work/litellm-<version>, one worker, no database, a master key."""

    def __init__(self, workdir: Path, venv: Path) -> None:
        super().__init__("litellm", workdir, key=LITELLM_MASTER_KEY)
        self.venv = venv

    @property
    def path(self) -> str:
        return "/v1" + api_path(self.profile)

    def prepare(self) -> None:
        if not (self.venv / "bin" / "litellm").exists():
            raise TargetUnavailable(f"LiteLLM is not installed in {self.venv}")

    def command(self, upstream: str) -> list[str]:
        config = self.workdir / "litellm.yaml"
        config.write_text(f"""# Benchmark configuration: one model routed to the nginx mock.
model_list:
  - model_name: {fixtures.MODEL}
    litellm_params:
      model: openai/{fixtures.UPSTREAM_MODEL}
      api_base: {upstream}
      api_key: {UPSTREAM_KEY}
general_settings:
  master_key: {LITELLM_MASTER_KEY}
""")
        return [str(self.venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                "--port", str(self.port), "--num_workers", "1"]

    def environ(self) -> dict[str, str]:
        env = clean_environ()
        # Use the cost map shipped in the package instead of fetching it over the network at start.
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        return env


def litellm_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def ensure_litellm(venv: Path) -> None:
    """Create the LiteLLM virtual environment at the pinned release, unless it is already there."""
    if litellm_version(venv) == LITELLM_VERSION and (venv / "bin" / "litellm").exists():
        return
    print(f"bench: installing litellm[proxy]=={LITELLM_VERSION} into {venv} (once)", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"], check=True)


# -- PostgreSQL and Redis scratch space ------------------------------------------------------------------


def _psql(sql: str) -> None:
    done = subprocess.run(["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise TargetUnavailable(f"PostgreSQL at {PG_ADMIN_URL}: {done.stderr.strip()}")


def _postgres_scratch(*, create: bool) -> None:
    _psql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    if create:
        _psql(f"CREATE DATABASE {PG_DATABASE}")


def _redis_flush() -> None:
    done = subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or "OK" not in done.stdout:
        raise TargetUnavailable(f"Redis at {REDIS_URL}: {(done.stderr or done.stdout).strip()}")
