"""Behaviour directives: how the simulator should (mis)behave for one request.

A directive string is a list of `key=value` items (or bare flags) separated by `;` or `,`:

    ttft=200;tps=50;status=429;retry_after=2

Keys (times in milliseconds unless noted):

    latency=<ms>        delay before the response starts (no headers sent yet)
    ttft=<ms>           stream: silence after the headers before the first chunk; non-stream: added to latency
    tps=<n>             tokens per second: streams pace chunks, non-stream waits tokens/tps (default: no cap)
    tokens=<n>          completion tokens to produce (default: 8..40, derived from the prompt)
    chunk_tokens=<n>    tokens per stream chunk (default 1)
    status=<code>       answer with this HTTP status and the wire format's error body (200 = succeed)
    retry_after=<s>     add a `retry-after` header (seconds) to error answers
    drop_after=<n>      stream: abort the connection after n content chunks (before the finish chunk if
                        the reply is shorter); non-stream: after the headers, before the body
    error_after=<n>     stream: send an in-band error event after n content chunks and end the stream
                        (no [DONE]); non-stream: answer 500
    malformed           non-stream: 200 with an invalid JSON body; stream: one invalid `data:` event
    hang                accept the request and never answer
    fail_first=<n>      the first n requests fail with `status` (default 503), later ones succeed
    reasoning=<n>       n reasoning tokens (reported in usage; paced like output before the first chunk)
    cached=<n>          report n prompt tokens as cached
    broken_json=<how>   a JSON-mode reply that is not valid JSON: `fence` (in a markdown fence), `trailing`
                        (text after it), `truncate` (its last characters cut off)

Flags also take a value (`malformed=false`), so a later source can switch off an earlier one. Sources merge
per key, later ones winning: the behaviour installed for the model, directives after `#` in the model name,
then the `X-Sim-Behaviour` header. A malformed directive raises `DirectiveError`, which the server turns
into a 400 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

__all__ = ["BROKEN_JSON", "DIRECTIVE_KEYS", "Behaviour", "DirectiveError", "parse_directives"]


class DirectiveError(ValueError):
    """A directive string is malformed; `directive` is the offending item."""

    def __init__(self, directive: str, reason: str) -> None:
        super().__init__(f"invalid simulator directive {directive!r}: {reason}")
        self.directive = directive
        self.reason = reason


def _milliseconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of milliseconds >= 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds >= 0")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a number > 0")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _count_at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected an integer >= 1")
    return value


def _status(text: str) -> int:
    value = int(text)
    if value != 200 and not 400 <= value <= 599:
        raise ValueError("expected 200 or an error status from 400 to 599")
    return value


BROKEN_JSON = ("fence", "trailing", "truncate")


def _broken_json(text: str) -> str:
    if text not in BROKEN_JSON:
        raise ValueError(f"expected one of {', '.join(BROKEN_JSON)}")
    return text


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "latency": _milliseconds,
    "ttft": _milliseconds,
    "tps": _positive,
    "tokens": _count,
    "chunk_tokens": _count_at_least_one,
    "status": _status,
    "retry_after": _seconds,
    "drop_after": _count,
    "error_after": _count,
    "malformed": _flag,
    "hang": _flag,
    "fail_first": _count,
    "reasoning": _count,
    "cached": _count,
    "broken_json": _broken_json,
}
_FLAGS = frozenset({"malformed", "hang"})

DIRECTIVE_KEYS: tuple[str, ...] = tuple(_PARSERS)
"""Every directive key, in documentation order."""


def parse_directives(text: str) -> dict[str, Any]:
    """Parse a directive string into validated `{key: value}` settings; raises `DirectiveError`."""
    return dict(_parse_cached(text))


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> tuple[tuple[str, Any], ...]:
    settings: dict[str, Any] = {}
    for raw in text.replace(",", ";").split(";"):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        value = value.strip()
        parser = _PARSERS.get(key)
        if parser is None:
            known = ", ".join(DIRECTIVE_KEYS)
            raise DirectiveError(item, f"unknown key {key!r} (known keys: {known})")
        if not sep:
            if key not in _FLAGS:
                raise DirectiveError(item, f"{key!r} needs a value ({key}=...)")
            settings[key] = True
            continue
        try:
            settings[key] = parser(value)
        except ValueError as exc:
            reason = str(exc) if not str(exc).startswith(("could not", "invalid literal")) else ""
            raise DirectiveError(item, reason or f"bad value {value!r}") from None
    return tuple(settings.items())


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The effective behaviour for one request. Field names equal the directive keys."""

    latency: float = 0.0
    ttft: float = 0.0
    tps: float | None = None
    tokens: int | None = None
    chunk_tokens: int = 1
    status: int | None = None
    retry_after: float | None = None
    drop_after: int | None = None
    error_after: int | None = None
    malformed: bool = False
    hang: bool = False
    fail_first: int | None = None
    reasoning: int = 0
    cached: int = 0
    broken_json: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Behaviour:
        """Build from validated settings (as returned by `parse_directives`)."""
        return cls(**settings) if settings else _DEFAULT

    @classmethod
    def parse(cls, *sources: str) -> Behaviour:
        """Parse and merge directive strings, later ones winning per key; raises `DirectiveError`."""
        merged: dict[str, Any] = {}
        for source in sources:
            merged.update(_parse_cached(source))
        return cls.from_settings(merged)

    @property
    def is_default(self) -> bool:
        return self == _DEFAULT

    @property
    def error_status(self) -> int | None:
        """The status a failing request answers with (`status`, or 503 under `fail_first`)."""
        if self.status is not None and self.status != 200:
            return self.status
        return 503 if self.fail_first is not None else None

    def directives(self) -> str:
        """The canonical directive string for the non-default fields (round-trips through `parse`)."""
        items: list[str] = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value == field.default:
                continue
            if isinstance(value, bool):
                items.append(field.name if value else f"{field.name}=false")
            elif isinstance(value, float) and value.is_integer():
                items.append(f"{field.name}={int(value)}")
            else:
                items.append(f"{field.name}={value}")
        return ";".join(items)

    def as_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


_DEFAULT = Behaviour()
