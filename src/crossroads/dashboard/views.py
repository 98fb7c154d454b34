"""The dashboard's own read-only views, for what the public API has no call for: a listing of recent
generations (the public API reads one generation at a time) and the health series behind a model page's
sparklines. Both read what the gateway keeps anyway — the ledger in storage, routing's health figures — and
write nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from crossroads.api.render import json_response
from crossroads.catalog.types import Catalog
from crossroads.errors import InvalidParameter, NotFound
from crossroads.ledger.accounting import from_nanos
from crossroads.ledger.writer import LedgerWriter
from crossroads.routing.health import Health
from crossroads.storage.base import GenerationQuery, GenerationRecord, Store

MAX_LISTED: Final = 200
STATUSES: Final = {"ok": False, "error": True}


class Views:
    def __init__(self, catalog: Catalog, health: Health, ledger: LedgerWriter, store: Store) -> None:
        self.catalog = catalog
        self.health = health
        self.ledger = ledger
        self.store = store

    async def generations(self, request: web.Request, key_hash: str | None) -> web.Response:
        """Recent generations, newest first: every key's for the management key, else `key_hash`'s only."""
        query = _query(request.query, key_hash)
        await self.ledger.flush()
        records = await self.store.recent_generations(query)
        return json_response({"data": [summary(r) for r in records]})

    async def history(self, request: web.Request) -> web.Response:
        slug = f"{request.match_info['author']}/{request.match_info['slug']}"
        model = self.catalog.models.get(slug)
        if model is None:
            raise NotFound(f"Model {slug} not found")
        data = []
        for endpoint in model.endpoints:
            history = self.health.history(endpoint.key)
            data.append({"provider_name": endpoint.provider.name, "tag": endpoint.tag,
                         "ttft": history.ttft, "throughput": history.throughput, "uptime": history.uptime})
        return json_response({"data": data})

    def model_providers(self) -> web.Response:
        """Each model's providers (the public model listing names none), and whether each is configured."""
        return json_response({"data": {
            model.id: [{"name": e.provider.name, "configured": e.provider.configured or e.is_simulator}
                       for e in model.endpoints]
            for model in self.catalog.models.values()}})


def summary(record: GenerationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "created_at": dt.datetime.fromtimestamp(record.created_at, dt.UTC).isoformat(),
        "model": record.model,
        "provider_name": record.provider_name,
        "app": record.app_title or record.http_referer,
        "api_key_hash": record.key_hash,
        "tokens_prompt": record.tokens_prompt,
        "tokens_completion": record.tokens_completion,
        "total_cost": float(from_nanos(record.cost_nanos)),
        "latency": record.latency_ms,
        "generation_time": record.generation_time_ms,
        "streamed": record.streamed,
        "status": record.status,
        "error": record.error_message,
        "finish_reason": record.finish_reason,
    }


def _query(params: Mapping[str, str], key_hash: str | None) -> GenerationQuery:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", "must be ok or error")
    before = None
    if params.get("before"):
        try:
            before = dt.datetime.fromisoformat(params["before"]).timestamp()
        except ValueError:
            raise InvalidParameter("before", "expected an ISO 8601 timestamp") from None
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise InvalidParameter("limit", "expected an integer") from None
    if not 1 <= limit <= MAX_LISTED:
        raise InvalidParameter("limit", f"must be between 1 and {MAX_LISTED}")
    return GenerationQuery(key_hash=key_hash, model=params.get("model") or None,
                           provider_name=params.get("provider") or None, app=params.get("app") or None,
                           failed=None if status is None else STATUSES[status], before=before, limit=limit)
