"""What the management APIs share: offset/limit paging in OpenRouter's terms, and ISO 8601 timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from crossroads.errors import InvalidParameter


def page(query: Mapping[str, str]) -> tuple[int, int]:
    """`offset` (from 0) and `limit` (1 to 100, 50 by default), as the spec's paginated lists take them."""
    return integer(query, "offset", 0, 0, None), integer(query, "limit", 50, 1, 100)


def integer(values: Mapping[str, str], name: str, default: int | None, low: int, high: int | None) -> int:
    """An integer query or path parameter within [low, high]; `default` when absent (None: required)."""
    raw = values.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidParameter(name, "is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(name, "expected an integer") from None
    if value < low or (high is not None and value > high):
        raise InvalidParameter(name, f"must be between {low} and {high}" if high else f"must be {low} or greater")
    return value


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
