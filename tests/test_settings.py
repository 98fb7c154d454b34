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
    assert settings.log_content is False and settings.log_content_days == 30
    on = from_environ({"CROSSROADS_LOG_CONTENT": "on", "CROSSROADS_LOG_CONTENT_DAYS": "7"})
    assert on.log_content is True and on.log_content_days == 7


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
    ("CROSSROADS_LOG_CONTENT", "sometimes"),
    ("CROSSROADS_LOG_CONTENT_DAYS", "0"),
    ("CROSSROADS_CATALOG", "/no/such/file.toml"),
    ("CROSSROADS_HEADER_TIMEOUT", "0"),
    ("CROSSROADS_RESPONSE_CACHE", "sometimes"),
    ("CROSSROADS_RESPONSE_CACHE_TTL", "0"),
    ("CROSSROADS_WEB_SEARCH_API", "altavista"),
    ("CROSSROADS_WEB_SEARCH_URL", "ftp://search"),
    ("CROSSROADS_MAX_PENDING_PER_CLIENT", "-1"),
    ("CROSSROADS_WORKERS", "0"),
    ("CROSSROADS_WORKERS", "many"),
    ("CROSSROADS_DRAIN_TIMEOUT", "-5"),
    ("CROSSROADS_DEBUG_HEADERS", "yes"),
    ("CROSSROADS_OTLP_ENDPOINT", "collector:4318"),
    ("CROSSROADS_OTLP_CONTENT", "yes"),
    ("CROSSROADS_TRUSTED_PROXIES", "10.0.0.1,proxy.local"),
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


def test_response_cache_and_web_search_settings() -> None:
    assert not from_environ({}).response_cache and from_environ({}).web_search_api is None
    settings = from_environ({"CROSSROADS_RESPONSE_CACHE": "on", "CROSSROADS_RESPONSE_CACHE_TTL": "60",
                             "CROSSROADS_WEB_SEARCH_API": "tavily", "CROSSROADS_WEB_SEARCH_URL": "http://s:8080",
                             "CROSSROADS_WEB_SEARCH_KEY": "tvly-1"})
    assert settings.response_cache and settings.response_cache_ttl == 60
    assert (settings.web_search_api, settings.web_search_url, settings.web_search_key) == \
        ("tavily", "http://s:8080", "tvly-1")
    with pytest.raises(ConfigError, match="CROSSROADS_WEB_SEARCH_API"):
        from_environ({"CROSSROADS_WEB_SEARCH_URL": "http://s:8080"})
    with pytest.raises(ConfigError, match="CROSSROADS_WEB_SEARCH_URL"):  # SearXNG is self-hosted
        from_environ({"CROSSROADS_WEB_SEARCH_API": "searxng"})
    assert from_environ({"CROSSROADS_WEB_SEARCH_API": "brave"}).web_search_url is None


def test_secrets_are_the_management_key_and_keys_in_the_environment() -> None:
    settings = from_environ({"CROSSROADS_ADMIN_KEY": "a" * 20, "OPENAI_API_KEY": "sk-x", "PATH": "/bin",
                             "CROSSROADS_PROVIDER_GROQ_API_KEY": "gsk", "HF_TOKEN": "hf"})
    assert sorted(settings.secrets()) == sorted(["a" * 20, "sk-x", "gsk", "hf"])


def test_workers_are_a_count_or_the_cpus_this_process_may_use() -> None:
    import os

    assert from_environ({}).workers == 1 and from_environ({}).drain_timeout == 30.0
    assert from_environ({"CROSSROADS_WORKERS": "3"}).workers == 3
    assert from_environ({"CROSSROADS_WORKERS": "auto"}).workers == len(os.sched_getaffinity(0))
    settings = from_environ({"CROSSROADS_DRAIN_TIMEOUT": "2.5", "CROSSROADS_DEBUG_HEADERS": "on"})
    assert settings.drain_timeout == 2.5 and settings.debug_headers


def test_the_shipper_gets_the_tracing_switches_and_the_sdk_variables() -> None:
    assert from_environ({"OTEL_SERVICE_NAME": "gw"}).tracing_environ() == {
        "CROSSROADS_OTLP_ENDPOINT": "", "CROSSROADS_OTLP_CONTENT": "off", "OTEL_SERVICE_NAME": "gw"}
    settings = from_environ({"CROSSROADS_OTLP_ENDPOINT": "http://collector:4318", "CROSSROADS_OTLP_CONTENT": "on",
                             "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=blue", "PATH": "/bin"})
    assert settings.tracing_environ() == {"CROSSROADS_OTLP_ENDPOINT": "http://collector:4318",
                                          "CROSSROADS_OTLP_CONTENT": "on",
                                          "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=blue"}


def test_trusted_proxies_are_addresses_and_networks() -> None:
    proxies = from_environ({"CROSSROADS_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,::1"}).trusted_proxies
    assert [str(p) for p in proxies] == ["10.0.0.1/32", "192.168.0.0/16", "::1/128"]
    assert from_environ({}).trusted_proxies == ()


def test_the_catalog_refresh_is_off_unless_allowed() -> None:
    url = "https://openrouter.ai/api/v1/models"
    assert not from_environ({"CROSSROADS_CATALOG_URL": url}).catalog_refresh
    settings = from_environ({"CROSSROADS_CATALOG_URL": url, "CROSSROADS_CATALOG_REFRESH": "on",
                             "CROSSROADS_CATALOG_CACHE": "/var/lib/crossroads/catalog.toml"})
    assert settings.catalog_refresh and settings.catalog_url == url
    assert settings.catalog_refresh_interval == 86_400
    assert settings.catalog_cache == Path("/var/lib/crossroads/catalog.toml")
