"""Settings are read once from the environment, and a bad value is refused with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads.errors import ConfigError
from crossroads.settings import from_environ


def test_defaults() -> None:
    settings = from_environ({})
    assert settings.database_url == "sqlite:///crossroads.db"
    assert settings.port == 8000 and settings.simulator == "auto" and settings.admin_key is None


@pytest.mark.parametrize(("name", "value"), [
    ("CROSSROADS_PORT", "http"),
    ("CROSSROADS_PORT", "70000"),
    ("CROSSROADS_DATABASE_URL", "mysql://x"),
    ("CROSSROADS_REDIS_URL", "localhost:6379"),
    ("CROSSROADS_SIMULATOR", "maybe"),
    ("CROSSROADS_ADMIN_KEY", "short"),
    ("CROSSROADS_MAX_BODY_BYTES", "-1"),
    ("CROSSROADS_FIRST_BYTE_TIMEOUT", "soon"),
    ("CROSSROADS_LOG_LEVEL", "LOUD"),
    ("CROSSROADS_CATALOG", "/no/such/file.toml"),
    ("CROSSROADS_HEADER_TIMEOUT", "0"),
    ("CROSSROADS_MAX_PENDING_PER_CLIENT", "-1"),
    ("CROSSROADS_CATALOG_REFRESH", "daily"),
    ("CROSSROADS_CATALOG_REFRESH", "on"),  # and no CROSSROADS_CATALOG_URL to refresh from
    ("CROSSROADS_CATALOG_REFRESH_INTERVAL", "0"),
])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        from_environ({name: value})


def test_values_are_taken(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text("")
    settings = from_environ({
        "CROSSROADS_PORT": "9000", "CROSSROADS_DATABASE_URL": "postgresql://u@h/db",
        "CROSSROADS_REDIS_URL": "redis://127.0.0.1:6379/0", "CROSSROADS_CATALOG": str(extra),
        "CROSSROADS_STREAM_KEEPALIVE": "0.5", "CROSSROADS_SIMULATOR": "off",
        "CROSSROADS_HEADER_TIMEOUT": "2.5", "CROSSROADS_MAX_PENDING_PER_CLIENT": "0",
    })
    assert settings.header_timeout == 2.5 and settings.max_pending_per_client == 0
    assert settings.port == 9000 and settings.catalog_paths == (extra,) and settings.keepalive_seconds == 0.5
    assert settings.with_flags(port=1234, host=None).port == 1234


def test_secrets_are_the_management_key_and_keys_in_the_environment() -> None:
    settings = from_environ({"CROSSROADS_ADMIN_KEY": "a" * 20, "OPENAI_API_KEY": "sk-x", "PATH": "/bin",
                             "CROSSROADS_PROVIDER_GROQ_API_KEY": "gsk", "HF_TOKEN": "hf"})
    assert sorted(settings.secrets()) == sorted(["a" * 20, "sk-x", "gsk", "hf"])


def test_the_catalog_refresh_is_off_unless_allowed() -> None:
    url = "https://openrouter.ai/api/v1/models"
    assert not from_environ({"CROSSROADS_CATALOG_URL": url}).catalog_refresh
    settings = from_environ({"CROSSROADS_CATALOG_URL": url, "CROSSROADS_CATALOG_REFRESH": "on",
                             "CROSSROADS_CATALOG_CACHE": "/var/lib/crossroads/catalog.toml"})
    assert settings.catalog_refresh and settings.catalog_url == url
    assert settings.catalog_refresh_interval == 86_400
    assert settings.catalog_cache == Path("/var/lib/crossroads/catalog.toml")
