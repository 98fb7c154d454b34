"""`GET /api/v1/activity`: spend and tokens per UTC day, grouped by model and provider (OpenRouter's shape),
or by any of model, provider, app and key (`group_by=app,key`; an extension for dashboards). Another
extension, `granularity`, buckets by `hour` (the last 48 hours), `week` (12 weeks, from Mondays) or `month`
(12 months) instead of `day` (30 days); each row's `date` is its bucket's start. Each item also
counts the feedback submitted on its generations (`feedback`, an extension: `POST /generation/feedback`).

With the management key it covers every key (`api_key_hash` narrows it); with an API key, only that key.
Usage is read from the ledger after writing out what is pending, so it is exact and the same on every
process.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from crossroads.api.render import json_response
from crossroads.errors import InvalidParameter
from crossroads.ledger.accounting import from_nanos
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.writer import LedgerWriter
from crossroads.storage.base import ActivityRow, Store

DAYS: Final = 30
GROUPS: Final = ("model", "provider", "app", "key")
HOURS: Final = 48
WEEKS: Final = 12
MONTHS: Final = 12
GRANULARITIES: Final = ("hour", "day", "week", "month")


class ActivityAPI:
    def __init__(self, keys: KeyRing, ledger: LedgerWriter, store: Store) -> None:
        self.keys = keys
        self.ledger = ledger
        self.store = store

    async def get(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        query = request.query
        key_hash = query.get("api_key_hash")
        if not self.keys.is_admin(authorization):
            own = (await self.keys.authenticate(authorization)).hash
            if key_hash not in (None, own):
                raise InvalidParameter("api_key_hash", "an API key can only see its own activity")
            key_hash = own
        groups = _groups(query.get("group_by"))
        granularity = query.get("granularity", "day")
        if granularity not in GRANULARITIES:
            raise InvalidParameter("granularity", f"must be one of {', '.join(GRANULARITIES)}")
        now = time.time()
        since = _since(granularity, dt.datetime.fromtimestamp(now, dt.UTC))
        until = now + 1
        if "date" in query:
            day = _date(query["date"])
            since = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
            until = since + 86400
        await self.ledger.flush()
        rows = await self.store.activity(since, until, key_hash, hourly=granularity == "hour")
        return json_response({"data": _aggregate(rows, groups, _period(granularity))})


def _since(granularity: str, now: dt.datetime) -> float:
    today = now.date()
    if granularity == "hour":
        return now.replace(minute=0, second=0, microsecond=0).timestamp() - (HOURS - 1) * 3600
    if granularity == "week":
        start = today - dt.timedelta(days=today.weekday() + 7 * (WEEKS - 1))
    elif granularity == "month":
        month = today.year * 12 + today.month - 1 - (MONTHS - 1)
        start = dt.date(month // 12, month % 12 + 1, 1)
    else:
        start = today - dt.timedelta(days=DAYS - 1)
    return dt.datetime.combine(start, dt.time(), dt.UTC).timestamp()


def _period(granularity: str) -> Callable[[str], str]:
    """Maps a row's date (a day, or an hour) to the start of its bucket."""
    if granularity == "week":
        return lambda day: (dt.date.fromisoformat(day) - dt.timedelta(days=dt.date.fromisoformat(day).weekday())
                            ).isoformat()
    if granularity == "month":
        return lambda day: day[:8] + "01"
    return lambda date: date


def _groups(raw: str | None) -> tuple[str, ...]:
    if raw in (None, "", "workspace"):
        return ("model", "provider")
    groups = tuple(g.strip() for g in raw.split(","))
    for group in groups:
        if group not in GROUPS:
            raise InvalidParameter("group_by", f"must be a comma-separated list of {', '.join(GROUPS)}")
    return groups


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter("date", "expected YYYY-MM-DD") from None


def _aggregate(rows: list[ActivityRow], groups: tuple[str, ...],
               period: Callable[[str], str] = lambda date: date) -> list[dict[str, Any]]:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        parts = {"model": row.model, "provider": row.provider_name, "app": row.app, "key": row.key_hash}
        date = period(row.date)
        ident = (date, *(parts[g] for g in groups))
        item = merged.get(ident)
        if item is None:
            item = merged[ident] = {"date": date, "requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                    "reasoning_tokens": 0, "usage_nanos": 0, "feedback": 0}
            if "model" in groups:
                item.update(model=row.model, model_permaslug=row.model)
            if "provider" in groups:
                item.update(provider_name=row.provider_name or "", endpoint_id=f"{row.model}|{row.provider_name}")
            if "app" in groups:
                item["app"] = row.app
            if "key" in groups:
                item["api_key_hash"] = row.key_hash
        item["requests"] += row.requests
        item["prompt_tokens"] += row.prompt_tokens
        item["completion_tokens"] += row.completion_tokens
        item["reasoning_tokens"] += row.reasoning_tokens
        item["usage_nanos"] += row.cost_nanos
        item["feedback"] += row.feedback
    out = []
    for item in merged.values():
        item["usage"] = float(from_nanos(item.pop("usage_nanos")))
        item["byok_usage_inference"] = 0.0
        out.append(item)
    return out
