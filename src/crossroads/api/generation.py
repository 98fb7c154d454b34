"""`GET /api/v1/generation?id=`: one generation's stats and cost, plus its routing trace.

Readable the moment the response has ended: recent generations are answered from memory, before their
batched database write has landed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from crossroads.api.render import json_response
from crossroads.errors import Forbidden, InvalidParameter, NotFound
from crossroads.ledger.accounting import from_nanos
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.writer import LedgerWriter
from crossroads.storage.base import GenerationRecord, Store


class GenerationAPI:
    def __init__(self, keys: KeyRing, writer: LedgerWriter, store: Store) -> None:
        self.keys = keys
        self.writer = writer
        self.store = store

    async def get(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        admin = self.keys.is_admin(authorization)
        key = None if admin else await self.keys.authenticate(authorization)
        generation_id = request.query.get("id")
        if not generation_id:
            raise InvalidParameter("id", "is required")
        record = self.writer.recent(generation_id) or await self.store.get_generation(generation_id)
        if record is None:
            raise NotFound(f"Generation {generation_id} not found")
        if key is not None and record.key_hash != key.hash:
            raise Forbidden("This generation belongs to another key")
        return json_response({"data": render(record)})


#: `/generation`'s `api_type` of each operation; chat, text completions (and their older rows) are
#: "completions", as on OpenRouter for every chat-shaped API.
API_TYPES: Final[Mapping[str, str]] = {"embeddings": "embeddings", "rerank": "rerank"}


def render(record: GenerationRecord) -> dict[str, Any]:
    trace = orjson.loads(record.trace) if record.trace else []
    cost = float(from_nanos(record.cost_nanos))
    return {
        "id": record.id,
        "request_id": record.id,
        "upstream_id": record.upstream_id,
        "created_at": dt.datetime.fromtimestamp(record.created_at, dt.UTC).isoformat(),
        "model": record.model,
        "provider_name": record.provider_name,
        "router": None,
        "app_id": None,
        "origin": record.http_referer or "",
        "http_referer": record.http_referer,
        "app_title": record.app_title,
        "user_agent": record.user_agent,
        "external_user": record.external_user,
        "session_id": record.session_id,
        "api_type": API_TYPES.get(record.operation or "", "completions"),
        "streamed": record.streamed,
        "cancelled": record.cancelled,
        "status": record.status,
        "error": record.error_message,
        "finish_reason": record.finish_reason,
        "native_finish_reason": record.native_finish_reason,
        "latency": record.latency_ms,
        "generation_time": record.generation_time_ms,
        "moderation_latency": None,
        "tokens_prompt": record.tokens_prompt,
        "tokens_completion": record.tokens_completion,
        "native_tokens_prompt": record.tokens_prompt,
        "native_tokens_completion": record.tokens_completion,
        "native_tokens_reasoning": record.tokens_reasoning,
        "native_tokens_cached": record.tokens_cached,
        "native_tokens_cache_write": record.tokens_cache_write,
        "native_tokens_completion_images": None,
        "usage_estimated": record.usage_estimated,
        "num_media_prompt": record.num_media_prompt,
        "num_media_completion": None,
        "num_input_audio_prompt": None,
        "num_search_results": record.num_search_results,
        "num_fetches": None,
        "web_search_engine": record.web_search_engine,
        "usage": cost,
        "total_cost": cost,
        "upstream_inference_cost": None,
        "cache_discount": None,
        "is_byok": False,
        "preset_id": None,
        "service_tier": None,
        "data_region": "global",
        "workspace_id": None,
        "response_cache_source_id": None,
        "provider_responses": [
            {"provider_name": a.get("provider"), "endpoint_id": a.get("endpoint"),
             "model_permaslug": a.get("model"), "status": a.get("status"), "latency": a.get("latency_ms"),
             "is_byok": False}
            for a in trace
        ],
        "routing_trace": trace,
    }
