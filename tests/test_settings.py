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
    })
    assert settings.port == 9000 and settings.catalog_paths == (extra,) and settings.keepalive_seconds == 0.5
    assert settings.with_flags(port=1234, host=None).port == 1234
