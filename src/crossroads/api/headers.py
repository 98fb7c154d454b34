"""Client header values as safe text, decoded once at the edge.

The HTTP parser hands header values over as `str` decoded with `surrogateescape`: bytes that are not UTF-8
arrive as lone surrogates, which no JSON encoder, database driver or HTTP client accepts. Every header value
that travels further than the request — into a generation record, the log, an upstream request — goes
through `text()` first: undecodable bytes become U+FFFD and the length is capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: Longest header value kept (app title, referer, user agent, session id): enough for any real one.
MAX_CHARS: Final = 1024


def text(value: str | None, limit: int = MAX_CHARS) -> str | None:
    """`value` with undecodable bytes replaced and at most `limit` characters; None stays None."""
    if value is None:
        return None
    if not value.isascii():
        # Lone surrogates are the parser's stand-ins for bytes that were not UTF-8: turn them back into
        # those bytes, then decode with replacement. Valid non-ASCII text is unchanged by the round trip.
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate the parser did not make: keep it as bytes to be replaced
            raw = value.encode("utf-8", "surrogatepass")
        value = raw.decode("utf-8", "replace")
    return value[:limit]


def first(headers: Mapping[str, str], *names: str, limit: int = MAX_CHARS) -> str | None:
    """The first of `names` present and non-empty, as safe text."""
    for name in names:
        value = headers.get(name)
        if value:
            return text(value, limit)
    return None


__all__ = ["MAX_CHARS", "first", "text"]
