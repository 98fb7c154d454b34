"""Settings, read once at start from the environment (and a few command-line flags).

Every value is checked here, so a bad setting stops the gateway with a message naming the variable instead
of failing later on some request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Final, Literal

from crossroads.errors import ConfigError

SimulatorMode = Literal["auto", "on", "off"]

DEFAULT_DATABASE: Final = "sqlite:///crossroads.db"
#: Where a supervisor tells its workers its broker listens (`supervisor.py`).
SHARED_SOCKET_ENV: Final = "CROSSROADS_SHARED_SOCKET"
#: The search API shapes `providers/search.py` speaks.
WEB_SEARCH_APIS: Final = ("exa", "tavily", "brave", "searxng")
#: Those with no public instance, whose URL the operator gives.
SELF_HOSTED_SEARCH_APIS: Final = ("searxng",)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    #: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `postgresql://user@host/db`.
    database_url: str = DEFAULT_DATABASE
    redis_url: str | None = None
    #: Prefix of every Redis key and channel, so several deployments can share one Redis.
    redis_namespace: str = "cr"
    admin_key: str | None = None
    catalog_paths: tuple[Path, ...] = ()
    #: An OpenRouter-format model list (`/api/v1/models` JSON, a URL or a file) to refresh the catalog from
    #: at run time, when `catalog_refresh` is on (see `catalog/refresh.py`).
    catalog_url: str | None = None
    catalog_refresh: bool = False
    #: Seconds between refreshes (a day).
    catalog_refresh_interval: int = 86_400
    #: The last good imported copy, loaded at start and replaced by each successful refresh.
    catalog_cache: Path = Path("crossroads-catalog.toml")
    #: `auto`: the built-in simulator serves every model while no real provider is configured, and stays
    #: out of routing (unless asked for by `provider.only`/`order`) once one is.
    simulator: SimulatorMode = "auto"
    default_model: str = "openai/gpt-4o-mini"
    max_body_bytes: int = 25 * 1024 * 1024
    #: Seconds of upstream silence before a stream is committed and `: OPENROUTER PROCESSING` is sent.
    keepalive_seconds: float = 2.0
    #: Seconds a client may take to send its request body before it gets 408.
    body_timeout: float = 60.0
    #: Seconds a connection may take to send complete request headers before it is closed (408).
    header_timeout: float = 10.0
    #: Connections one client address may hold open without completing a request for over a second.
    max_pending_per_client: int = 64
    connect_timeout: float = 10.0
    #: Time to first byte from an upstream before the attempt is abandoned (and another endpoint tried).
    first_byte_timeout: float = 120.0
    #: Longest silence between two bytes of an upstream reply once it has started.
    read_timeout: float = 300.0
    log_level: str = "INFO"
    log_json: bool = False
    #: Where usage records are spooled before they reach the database (see `ledger/spool.py`).
    spool_dir: Path = Path("crossroads-spool")
    #: Worker processes `crossroads serve` runs on one port (see `supervisor.py`).
    workers: int = 1
    #: Seconds a stopping gateway gives requests in flight to finish (after it stops accepting new ones).
    drain_timeout: float = 30.0
    #: Debug response headers: `X-Crossroads-Worker` names the worker process (its pid) that answered.
    debug_headers: bool = False
    #: The broker of the supervisor this worker belongs to (set by the supervisor, not by operators): state
    #: shared with the other workers when there is no Redis.
    shared_socket: Path | None = None
    #: `GET /metrics` is served (`CROSSROADS_METRICS=off`: it is not, and nothing is measured).
    metrics: bool = True
    #: When set, `GET /metrics` asks for `Authorization: Bearer <this token>`.
    metrics_token: str | None = None
    #: An OTLP/HTTP collector's base URL: the shipper exports a trace of every generation there.
    otlp_endpoint: str | None = None
    #: Export prompts and completions with the traces.
    otlp_content: bool = False
    #: Keep each generation's prompt and completion for `GET /generation/content` (off: never stored).
    log_content: bool = False
    #: Days stored content is kept before it is deleted.
    log_content_days: int = 30
    #: Response caching (`api/cache.py`): `on` caches every deterministic request that does not opt out;
    #: off, only those sent with `X-OpenRouter-Cache: true`. `response_cache_ttl`: the default lifetime.
    response_cache: bool = False
    response_cache_ttl: int = 300
    #: The `web` plugin's search backend: an API shape of `providers/search.py`, its base URL (default: the
    #: API's own) and key. Unset, the Simulator's search serves while the Simulator does.
    web_search_api: str | None = None
    web_search_url: str | None = None
    web_search_key: str | None = None
    #: Addresses (or networks) of reverse proxies whose `X-Forwarded-Proto` is believed: a dashboard session
    #: opened through one that says `https` gets a `Secure` cookie.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: Environment as read at start; the catalog loader takes provider URLs and keys from it.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> list[str]:
        """Values that must never reach a log: the management key and every key or token in the environment."""
        values = [self.admin_key] if self.admin_key else []
        values += [v for k, v in self.environ.items() if v and k.endswith(("_KEY", "_TOKEN", "_SECRET"))]
        return list(dict.fromkeys(values))

    def tracing_environ(self) -> dict[str, str]:
        """The environment of the shipper process's tracing (`ledger/traces.py`): Crossroads' switches and the
        OpenTelemetry SDK's standard `OTEL_*` variables."""
        return {"CROSSROADS_OTLP_ENDPOINT": self.otlp_endpoint or "",
                "CROSSROADS_OTLP_CONTENT": "on" if self.otlp_content else "off",
                **{k: v for k, v in self.environ.items() if k.startswith("OTEL_")}}

    def with_flags(self, **flags: object) -> Settings:
        return replace(self, **{k: v for k, v in flags.items() if v is not None})  # type: ignore[arg-type]


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    defaults = Settings()
    simulator = get("CROSSROADS_SIMULATOR") or "auto"
    if simulator not in ("auto", "on", "off"):
        raise ConfigError(f"CROSSROADS_SIMULATOR must be auto, on or off, not {simulator!r}")
    database_url = get("CROSSROADS_DATABASE_URL") or DEFAULT_DATABASE
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(
            "CROSSROADS_DATABASE_URL must start with sqlite:/// or postgresql:// "
            f"(got {database_url.split(':', 1)[0]!r})"
        )
    redis_url = get("CROSSROADS_REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("CROSSROADS_REDIS_URL must start with redis://, rediss:// or unix://")
    catalog = get("CROSSROADS_CATALOG")
    paths = tuple(Path(p) for p in catalog.split(os.pathsep) if p) if catalog else ()
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"CROSSROADS_CATALOG: {path} is not a file")
    catalog_url = get("CROSSROADS_CATALOG_URL")
    refresh = (get("CROSSROADS_CATALOG_REFRESH") or "off").lower()
    if refresh not in ("on", "off"):
        raise ConfigError(f"CROSSROADS_CATALOG_REFRESH must be on or off, not {refresh!r}")
    if refresh == "on" and not catalog_url:
        raise ConfigError("CROSSROADS_CATALOG_REFRESH is on but CROSSROADS_CATALOG_URL names no model list")
    admin_key = get("CROSSROADS_ADMIN_KEY")
    if admin_key is not None and len(admin_key) < 16:
        raise ConfigError("CROSSROADS_ADMIN_KEY must be at least 16 characters long")
    debug_headers = get("CROSSROADS_DEBUG_HEADERS") or "off"
    if debug_headers not in ("on", "off"):
        raise ConfigError(f"CROSSROADS_DEBUG_HEADERS must be on or off, not {debug_headers!r}")
    shared_socket = get(SHARED_SOCKET_ENV)
    otlp_endpoint = get("CROSSROADS_OTLP_ENDPOINT")
    if otlp_endpoint and not otlp_endpoint.startswith(("http://", "https://")):
        raise ConfigError("CROSSROADS_OTLP_ENDPOINT must be an http:// or https:// URL (OTLP over HTTP)")
    otlp_content = get("CROSSROADS_OTLP_CONTENT") or "off"
    if otlp_content not in ("on", "off"):
        raise ConfigError(f"CROSSROADS_OTLP_CONTENT must be on or off, not {otlp_content!r}")
    log_level = (get("CROSSROADS_LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"CROSSROADS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
    metrics = get("CROSSROADS_METRICS") or "on"
    if metrics not in ("on", "off"):
        raise ConfigError(f"CROSSROADS_METRICS must be on or off, not {metrics!r}")
    response_cache = get("CROSSROADS_RESPONSE_CACHE") or "off"
    if response_cache not in ("on", "off"):
        raise ConfigError(f"CROSSROADS_RESPONSE_CACHE must be on or off, not {response_cache!r}")
    web_search_api = get("CROSSROADS_WEB_SEARCH_API")
    if web_search_api is not None and web_search_api not in WEB_SEARCH_APIS:
        raise ConfigError(f"CROSSROADS_WEB_SEARCH_API must be one of {', '.join(WEB_SEARCH_APIS)}, "
                          f"not {web_search_api!r}")
    web_search_url = get("CROSSROADS_WEB_SEARCH_URL")
    if web_search_url is not None and not web_search_url.startswith(("http://", "https://")):
        raise ConfigError("CROSSROADS_WEB_SEARCH_URL must be an http:// or https:// URL")
    if web_search_url is not None and web_search_api is None:
        raise ConfigError("CROSSROADS_WEB_SEARCH_URL needs CROSSROADS_WEB_SEARCH_API (the API's shape)")
    if web_search_api in SELF_HOSTED_SEARCH_APIS and web_search_url is None:
        raise ConfigError(f"CROSSROADS_WEB_SEARCH_API={web_search_api} needs CROSSROADS_WEB_SEARCH_URL (the "
                          "instance's base URL)")
    return Settings(
        host=get("CROSSROADS_HOST") or defaults.host,
        port=_int(get("CROSSROADS_PORT"), "CROSSROADS_PORT", defaults.port, 0, 65535),
        database_url=database_url,
        redis_url=redis_url,
        redis_namespace=_namespace(get("CROSSROADS_REDIS_NAMESPACE") or "cr"),
        admin_key=admin_key,
        catalog_paths=paths,
        catalog_url=catalog_url,
        catalog_refresh=refresh == "on",
        catalog_refresh_interval=_int(get("CROSSROADS_CATALOG_REFRESH_INTERVAL"), "CROSSROADS_CATALOG_REFRESH_INTERVAL",
                                      defaults.catalog_refresh_interval, 1, 366 * 86_400),
        catalog_cache=Path(get("CROSSROADS_CATALOG_CACHE") or defaults.catalog_cache),
        simulator=simulator,  # type: ignore[arg-type]
        default_model=get("CROSSROADS_DEFAULT_MODEL") or defaults.default_model,
        max_body_bytes=_int(get("CROSSROADS_MAX_BODY_BYTES"), "CROSSROADS_MAX_BODY_BYTES",
                            defaults.max_body_bytes, 1024, 1 << 31),
        keepalive_seconds=_float(get("CROSSROADS_STREAM_KEEPALIVE"), "CROSSROADS_STREAM_KEEPALIVE",
                                 defaults.keepalive_seconds),
        body_timeout=_float(get("CROSSROADS_BODY_TIMEOUT"), "CROSSROADS_BODY_TIMEOUT", defaults.body_timeout),
        header_timeout=_float(get("CROSSROADS_HEADER_TIMEOUT"), "CROSSROADS_HEADER_TIMEOUT",
                              defaults.header_timeout),
        max_pending_per_client=_int(get("CROSSROADS_MAX_PENDING_PER_CLIENT"), "CROSSROADS_MAX_PENDING_PER_CLIENT",
                                    defaults.max_pending_per_client, 0, 1_000_000),
        connect_timeout=_float(get("CROSSROADS_CONNECT_TIMEOUT"), "CROSSROADS_CONNECT_TIMEOUT",
                               defaults.connect_timeout),
        first_byte_timeout=_float(get("CROSSROADS_FIRST_BYTE_TIMEOUT"), "CROSSROADS_FIRST_BYTE_TIMEOUT",
                                  defaults.first_byte_timeout),
        read_timeout=_float(get("CROSSROADS_READ_TIMEOUT"), "CROSSROADS_READ_TIMEOUT", defaults.read_timeout),
        log_level=log_level,
        log_json=(get("CROSSROADS_LOG_FORMAT") or "text") == "json",
        spool_dir=Path(get("CROSSROADS_SPOOL_DIR") or defaults.spool_dir),
        workers=workers(get("CROSSROADS_WORKERS")),
        drain_timeout=_float(get("CROSSROADS_DRAIN_TIMEOUT"), "CROSSROADS_DRAIN_TIMEOUT", defaults.drain_timeout),
        debug_headers=debug_headers == "on",
        shared_socket=Path(shared_socket) if shared_socket else None,
        metrics=metrics == "on",
        metrics_token=get("CROSSROADS_METRICS_TOKEN"),
        otlp_endpoint=otlp_endpoint,
        otlp_content=otlp_content == "on",
        log_content=_switch(get("CROSSROADS_LOG_CONTENT"), "CROSSROADS_LOG_CONTENT"),
        log_content_days=_int(get("CROSSROADS_LOG_CONTENT_DAYS"), "CROSSROADS_LOG_CONTENT_DAYS",
                              defaults.log_content_days, 1, 36500),
        response_cache=response_cache == "on",
        response_cache_ttl=_int(get("CROSSROADS_RESPONSE_CACHE_TTL"), "CROSSROADS_RESPONSE_CACHE_TTL",
                                defaults.response_cache_ttl, 1, 86_400),
        web_search_api=web_search_api,
        web_search_url=web_search_url,
        web_search_key=get("CROSSROADS_WEB_SEARCH_KEY"),
        trusted_proxies=_networks(get("CROSSROADS_TRUSTED_PROXIES")),
        environ=env,
    )


def workers(raw: str | None) -> int:
    """`CROSSROADS_WORKERS` (or `serve --workers`): a count, or `auto` for the CPUs this process may use."""
    if raw == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # no affinity on this platform
            return os.cpu_count() or 1
    return _int(raw, "CROSSROADS_WORKERS", 1, 1, 1024)


def _switch(raw: str | None, name: str) -> bool:
    if raw is None or raw.lower() in ("off", "false", "0", "no"):
        return False
    if raw.lower() in ("on", "true", "1", "yes"):
        return True
    raise ConfigError(f"{name} must be on or off, not {raw!r}")


def _networks(raw: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
    if raw is None:
        return ()
    try:
        return tuple(ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"CROSSROADS_TRUSTED_PROXIES must be IP addresses or networks separated by commas: {exc}"
                          ) from None


def _namespace(value: str) -> str:
    if not value.replace("-", "").replace("_", "").isalnum() or len(value) > 64:
        raise ConfigError("CROSSROADS_REDIS_NAMESPACE may hold letters, digits, - and _ (at most 64)")
    return value


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(raw: str | None, name: str, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value < 86400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds, not {value}")
    return value
