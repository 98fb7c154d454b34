"""Keys and credits: OpenRouter's provisioning API (`/keys`, management key only), `/key` (and the old
`/auth/key`) for the calling key, and `/credits`.

A key carries one field OpenRouter's spec does not have: `response_cache` (a boolean, on create, update and
every key shown), which opts all the key's eligible requests into response caching (`api/cache.py`).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.render import json_response
from crossroads.errors import InvalidParameter
from crossroads.ledger.accounting import MAX_GRANT_USD, MAX_LIMIT_USD, from_nanos, to_nanos
from crossroads.ledger.budget import Budget
from crossroads.ledger.credits import Credits
from crossroads.ledger.keys import Key, KeyRing
from crossroads.ledger.writer import LedgerWriter
from crossroads.ratelimit.base import FREE_HIGH_BALANCE_USD, FREE_PER_DAY_HIGH, Limiter, free_daily_rule
from crossroads.schema.fields import Enum, Integer, Number, Obj, String, boolean
from crossroads.storage.base import Store, UsageTotals

_RESETS = Enum("daily", "weekly", "monthly")
_LIMITS = {
    "rate_limit_requests": Integer(1, 10_000_000),
    "rate_limit_interval": Integer(1, 86_400),
    "tokens_per_minute": Integer(1, 1_000_000_000),
}
_CREATE = Obj({"name": String(min_length=1, max_length=256), "limit": Number(0, MAX_LIMIT_USD),
               "limit_reset": _RESETS,
               "include_byok_in_limit": boolean, "expires_at": String(), "creator_user_id": String(),
               "workspace_id": String(), "response_cache": boolean, **_LIMITS}, required=["name"])
_UPDATE = Obj({"name": String(min_length=1, max_length=256), "disabled": boolean,
               "limit": Number(0, MAX_LIMIT_USD),
               "limit_reset": _RESETS, "include_byok_in_limit": boolean, "expires_at": String(),
               "response_cache": boolean, **_LIMITS},
              closed=False)
#: `/key`'s deprecated `rate_limit` object: OpenRouter always answers -1 (limits are under the key's own
#: `rate_limit_requests` / `rate_limit_interval` here).
_LEGACY_RATE_LIMIT = {"requests": -1, "interval": "10s", "note": "Deprecated; safe to ignore."}
_GRANT = Obj({"amount": Number(0.000000001, MAX_GRANT_USD), "note": String(max_length=500)}, required=["amount"])


class KeysAPI:
    """Usage figures come from the ledger in storage (after writing out what is pending here), so every
    process reports the same; `limit_remaining` comes from the budget (which sees requests in flight)."""

    def __init__(self, keys: KeyRing, credits: Credits, budget: Budget, ledger: LedgerWriter, store: Store,
                 limiter: Limiter, max_body: int) -> None:
        self.keys = keys
        self.limiter = limiter
        self.credits = credits
        self.budget = budget
        self.ledger = ledger
        self.store = store
        self.max_body = max_body

    # -- provisioning (management key) -------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        body = _CREATE(await read_json(request, self.max_body), "body")
        fields = _fields(body)
        secret, key = await self.keys.create(body["name"], **fields)
        return json_response({"data": (await self.render([key]))[0], "key": secret}, status=201)

    async def index(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        include_disabled = request.query.get("include_disabled", "false").lower() == "true"
        offset = _offset(request.query.get("offset"))
        keys = [k for k in self.keys.all() if include_disabled or not k.record.disabled]
        return json_response({"data": await self.render(keys[offset:offset + 100])})

    async def get(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        return json_response({"data": (await self.render([self.keys.get(request.match_info["hash"])]))[0]})

    async def update(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        key_hash = request.match_info["hash"]
        self.keys.get(key_hash)
        raw = await read_json(request, self.max_body)
        body = _UPDATE(raw, "body")
        changes = _fields(body, patch=True)
        for name in ("name", "disabled"):
            if name in body:
                changes[name] = _not_null(body, name)
        key = await self.keys.update(key_hash, changes) if changes else self.keys.get(key_hash)
        return json_response({"data": (await self.render([key]))[0]})

    async def delete(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        await self.keys.delete(request.match_info["hash"])
        return json_response({"deleted": True})

    # -- the calling key ---------------------------------------------------------------------------------

    async def current(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if self.keys.is_admin(authorization):
            return json_response({"data": self._admin_view()})
        key = await self.keys.authenticate(authorization)
        data = (await self.render([key]))[0]
        high = self.credits.high_balance()
        daily = free_daily_rule(high)
        used = await self.limiter.used(key, daily)
        data.update({
            "is_free_tier": not high,
            "is_management_key": False,
            "is_provisioning_key": False,
            "rate_limit": _LEGACY_RATE_LIMIT,
            "allowed_data_regions": ["global"],
            "organization_id": None,
            "budgets": [],
            "effective_budget": self._budget(key, data),
            "free_model_daily_requests": {"used": used, "limit": daily.limit,
                                          "remaining": max(daily.limit - used, 0)},
        })
        return json_response({"data": data})

    # -- credits ------------------------------------------------------------------------------------------

    async def get_credits(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if not self.keys.is_admin(authorization):
            await self.keys.authenticate(authorization)
        granted, used = await self.credits.totals()
        return json_response({"data": {"total_credits": float(from_nanos(granted)),
                                       "total_usage": float(from_nanos(used))}})

    async def grant(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        body = _GRANT(await read_json(request, self.max_body), "body")
        nanos = to_nanos(Decimal(str(body["amount"])))
        granted, _ = await self.credits.totals()
        if granted + nanos > to_nanos(Decimal(MAX_LIMIT_USD)):
            raise InvalidParameter("body.amount", f"would take the credits granted past {MAX_LIMIT_USD} USD")
        await self.credits.grant(nanos, body.get("note"), str(uuid.uuid4()))
        granted, used = await self.credits.totals()
        return json_response({"data": {"total_credits": float(from_nanos(granted)),
                                       "total_usage": float(from_nanos(used))}}, status=201)

    # -- rendering ----------------------------------------------------------------------------------------

    async def render(self, keys: list[Key]) -> list[dict[str, Any]]:
        await self.ledger.flush()
        totals = await self.store.usage_totals([k.hash for k in keys], time.time())
        return [self._render(k, totals.get(k.hash, UsageTotals()), await self.budget.remaining(k)) for k in keys]

    def _render(self, key: Key, spend: UsageTotals, remaining: int | None) -> dict[str, Any]:
        record = key.record
        return {
            "hash": record.hash,
            "name": record.name,
            "label": record.label,
            "disabled": record.disabled,
            "limit": None if record.limit_nanos is None else float(from_nanos(record.limit_nanos)),
            "limit_remaining": None if remaining is None else float(from_nanos(max(remaining, 0))),
            "limit_reset": record.limit_reset,
            "include_byok_in_limit": record.include_byok_in_limit,
            "usage": float(from_nanos(spend.total)),
            "usage_daily": float(from_nanos(spend.daily)),
            "usage_weekly": float(from_nanos(spend.weekly)),
            "usage_monthly": float(from_nanos(spend.monthly)),
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "created_at": _iso(record.created_at),
            "updated_at": _iso(record.updated_at) if record.updated_at else None,
            "expires_at": _iso(record.expires_at) if record.expires_at else None,
            "creator_user_id": record.creator_user_id,
            "external_user": None,
            "last_used_at": None,
            "workspace_id": "default",
            "rate_limit_requests": record.rate_limit_requests,
            "rate_limit_interval": record.rate_limit_interval,
            "tokens_per_minute": record.tokens_per_minute,
            "response_cache": record.response_cache,
        }

    @staticmethod
    def _budget(key: Key, data: dict[str, Any]) -> dict[str, Any] | None:
        record = key.record
        if record.limit_nanos is None:
            return None
        spent = {"daily": data["usage_daily"], "weekly": data["usage_weekly"],
                 "monthly": data["usage_monthly"]}.get(record.limit_reset or "", data["usage"])
        return {"budget_id": None, "guardrail_id": None, "include_byok": record.include_byok_in_limit,
                "limit_usd": data["limit"], "remaining_usd": data["limit_remaining"],
                "reset_interval": record.limit_reset, "resets_at": None, "scope": "key_limit",
                "spend_usd": spent}

    def _admin_view(self) -> dict[str, Any]:
        return {
            "label": "management key", "limit": None, "limit_remaining": None, "limit_reset": None,
            "include_byok_in_limit": False, "usage": 0.0, "usage_daily": 0.0, "usage_weekly": 0.0,
            "usage_monthly": 0.0, "byok_usage": 0.0, "byok_usage_daily": 0.0, "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0, "is_free_tier": False, "is_management_key": True,
            "is_provisioning_key": True, "creator_user_id": None, "organization_id": None, "workspace_id": None,
            "allowed_data_regions": ["global"], "budgets": [], "effective_budget": None,
            "rate_limit": _LEGACY_RATE_LIMIT,
            "free_model_daily_requests": {"used": 0, "limit": FREE_PER_DAY_HIGH, "remaining": FREE_PER_DAY_HIGH},
        }


def _fields(body: dict[str, Any], patch: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "limit" in body:
        out["limit_nanos"] = None if body["limit"] is None else to_nanos(_decimal(body["limit"], "limit"))
    for name in ("limit_reset", *_LIMITS):  # null clears these
        if name in body:
            out[name] = body[name]
    for name in ("include_byok_in_limit", "response_cache"):
        if name in body:
            out[name] = _not_null(body, name)
    if not patch and "creator_user_id" in body:
        out["creator_user_id"] = body["creator_user_id"]
    if "expires_at" in body:  # null: the key never expires
        out["expires_at"] = None if body["expires_at"] is None else _parse_time(body["expires_at"])
    return out


def _not_null(body: dict[str, Any], name: str) -> Any:
    if body[name] is None:
        raise InvalidParameter(f"body.{name}", "must not be null")
    return body[name]


def _decimal(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise InvalidParameter(name, "expected a number") from None


def _parse_time(value: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter("expires_at", "expected an ISO 8601 UTC timestamp") from None
    if moment.utcoffset() != dt.timedelta(0):
        raise InvalidParameter("expires_at", "must be in UTC (end with Z or +00:00)")
    return moment.timestamp()


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


def _offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter("offset", "expected an integer") from None
    if value < 0:
        raise InvalidParameter("offset", "must be 0 or greater")
    return value


__all__ = ["FREE_HIGH_BALANCE_USD", "KeysAPI"]
