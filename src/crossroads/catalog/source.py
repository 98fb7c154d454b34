"""Read a document that is either a local file or an http(s) URL, for `crossroads catalog import` and the
run-time catalog refresh. A URL is fetched with aiohttp, the gateway's own HTTP client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import aiohttp

from crossroads.errors import ConfigError

#: OpenRouter's full model list is a few megabytes; anything far larger is not one.
MAX_BYTES: Final = 64 * 1024 * 1024
#: Seconds a fetch may take in all.
TIMEOUT: Final = 60.0


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def read(source: str) -> bytes:
    """The bytes of `source`, a path or an http(s) URL; `ConfigError` saying why when they cannot be had."""
    if not is_url(source):
        return await asyncio.to_thread(_read_file, source)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session, \
                session.get(source, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise ConfigError(f"{source}: HTTP {response.status} {response.reason}")
            body = await response.content.read(MAX_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConfigError(f"cannot fetch {source}: {exc or type(exc).__name__}") from exc
    if len(body) > MAX_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_BYTES} bytes")
    return body


def _read_file(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from exc


__all__ = ["MAX_BYTES", "TIMEOUT", "is_url", "read"]
