"""Settings, read once at start from the environment (and a few command-line flags).

Every value is checked here, so a bad setting stops the gateway with a message naming the variable instead
of failing later on some request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal

from crossroads.errors import ConfigError

SimulatorMode = Literal["auto", "on", "off"]

DEFAULT_DATABASE: Final = "sqlite:///crossroads.db"


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
    #: Environment as read at start; the catalog loader takes provider URLs and keys from it.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> list[str]:
        """Values that must never reach a log: the management key and every key or token in the environment."""
        values = [self.admin_key] if self.admin_key else []
        values += [v for k, v in self.environ.items() if v and k.endswith(("_KEY", "_TOKEN", "_SECRET"))]
        return list(dict.fromkeys(values))

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
    log_level = (get("CROSSROADS_LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"CROSSROADS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
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
        environ=env,
    )


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
