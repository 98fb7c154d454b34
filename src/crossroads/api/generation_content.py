"""`GET /api/v1/generation/content?id=` (a generation's prompt and completion, when content logging is on) and
`POST /api/v1/generation/feedback`, in the spec's shapes (`GenerationContentResponse`,
`SubmitGenerationFeedbackRequest`).

An API key reaches its own generations; the management key every one (the spec asks the management key for
feedback; a key's own feedback on its own generations is accepted too). Feedback is stored and counted in
`/activity` (`feedback` on each item).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

import orjson
from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.render import json_response
from crossroads.errors import Forbidden, InvalidParameter, NotFound
from crossroads.ledger.keys import KeyRing
from crossroads.ledger.writer import LedgerWriter
from crossroads.schema.fields import Enum, Obj, String
from crossroads.storage.base import FeedbackRecord, GenerationRecord, Store

CATEGORIES: Final = ("latency", "incoherence", "incorrect_response", "formatting", "billing", "api_error", "other")
_FEEDBACK: Final = Obj({"generation_id": String(min_length=1, max_length=256), "category": Enum(*CATEGORIES),
                        "comment": String(max_length=1000)}, required=["generation_id", "category"])


class GenerationContentAPI:
    def __init__(self, keys: KeyRing, writer: LedgerWriter, store: Store, log_content: bool, max_body: int) -> None:
        self.keys = keys
        self.writer = writer
        self.store = store
        self.log_content = log_content
        self.max_body = max_body

    async def _generation(self, request: web.Request, generation_id: str | None, field: str) \
            -> tuple[GenerationRecord, str | None]:
        """The generation the caller may see, and the caller's key hash (None: the management key)."""
        authorization = request.headers.get("Authorization")
        key_hash = None if self.keys.is_admin(authorization) else (await self.keys.authenticate(authorization)).hash
        if not generation_id:
            raise InvalidParameter(field, "is required")
        record = self.writer.recent(generation_id) or await self.store.get_generation(generation_id)
        if record is None:
            raise NotFound(f"Generation {generation_id} not found")
        if key_hash is not None and record.key_hash != key_hash:
            raise Forbidden("This generation belongs to another key")
        return record, key_hash

    async def content(self, request: web.Request) -> web.Response:
        record, _ = await self._generation(request, request.query.get("id"), "id")
        if record.content is None:
            why = "it is older than the retention period or was made while content logging was off" \
                if self.log_content else "content logging is off (CROSSROADS_LOG_CONTENT)"
            raise NotFound(f"No stored content for generation {record.id}: {why}")
        stored = orjson.loads(record.content)
        return json_response({"data": {"input": stored["input"], "output": stored["output"],
                                        "error": _error(record)}})

    async def feedback(self, request: web.Request) -> web.Response:
        body = _FEEDBACK(await read_json(request, self.max_body), "body")
        record, key_hash = await self._generation(request, body["generation_id"], "body.generation_id")
        await self.store.add_feedback(FeedbackRecord(str(uuid.uuid4()), record.id, key_hash, body["category"],
                                                     body.get("comment"), time.time()))
        return json_response({"data": {"success": True}})


def _error(record: GenerationRecord) -> dict[str, Any] | None:
    if record.status == 200:
        return None
    trace = orjson.loads(record.trace) if record.trace else []
    return {"status": record.status, "message": record.error_message,
            "provider_name": record.provider_name, "raw": None,
            "previous_errors": [{"code": a.get("status"), "message": a.get("error_type") or "error",
                                 "provider_name": a.get("provider"), "raw": None}
                                for a in trace if a.get("status") != 200]}


__all__ = ["CATEGORIES", "GenerationContentAPI"]
