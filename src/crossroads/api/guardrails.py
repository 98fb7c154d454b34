"""Guardrails (`/api/v1/guardrails…`, management key), in the shapes of OpenRouter's spec (`Guardrail`,
`KeyAssignment`, `BulkAssignKeysRequest`...), and `/api/v1/models/user`: the models the calling key may use.

Guardrails here belong to no workspace (`workspace_id` is null) and are assigned to keys only: the spec's
member assignments concern organisation members, which a self-hosted gateway does not have.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.listing import iso, page
from crossroads.api.models import ModelsAPI
from crossroads.api.render import json_response
from crossroads.errors import InvalidParameter
from crossroads.guardrails import rules as fields
from crossroads.guardrails.book import GuardrailBook
from crossroads.guardrails.enforce import Guardrails
from crossroads.guardrails.rules import BUILTINS, RULE_FIELDS, Guardrail
from crossroads.ledger.keys import KeyRing
from crossroads.schema.fields import ListOf, Obj, String
from crossroads.storage.base import GuardrailKeyRecord

_KEY_HASHES: Final = Obj({"key_hashes": ListOf(String(min_length=1, max_length=256), min_items=1,
                                               max_items=1000)}, required=["key_hashes"])
#: Who assigned a key: the management key (there are no users here).
_ASSIGNED_BY: Final = None


class GuardrailsAPI:
    def __init__(self, keys: KeyRing, book: GuardrailBook, guardrails: Guardrails, models: ModelsAPI,
                 max_body: int) -> None:
        self.keys = keys
        self.book = book
        self.guardrails = guardrails
        self.models = models
        self.max_body = max_body

    def _admin(self, request: web.Request) -> None:
        self.keys.require_admin(request.headers.get("Authorization"))

    async def index(self, request: web.Request) -> web.Response:
        self._admin(request)
        rails = self.book.all()
        offset, limit = page(request.query)
        return json_response({"data": [_guardrail(r) for r in rails[offset:offset + limit]],
                              "total_count": len(rails)})

    async def create(self, request: web.Request) -> web.Response:
        self._admin(request)
        body = fields.CREATE(await read_json(request, self.max_body), "body")
        fields.check_rules(body)
        rules = {k: body[k] for k in RULE_FIELDS if body.get(k) is not None}
        rail = await self.book.create(body["name"], body.get("description"), rules)
        return json_response({"data": _guardrail(rail)}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        self._admin(request)
        return json_response({"data": _guardrail(self.book.get(request.match_info["id"]))})

    async def update(self, request: web.Request) -> web.Response:
        self._admin(request)
        rail_id = request.match_info["id"]
        self.book.get(rail_id)
        body = fields.UPDATE(await read_json(request, self.max_body), "body")
        fields.check_rules(body)
        if "name" in body and body["name"] is None:
            raise InvalidParameter("body.name", "must not be null")
        return json_response({"data": _guardrail(await self.book.update(rail_id, body))})

    async def delete(self, request: web.Request) -> web.Response:
        self._admin(request)
        await self.book.delete(request.match_info["id"])
        return json_response({"deleted": True})

    # -- key assignments --------------------------------------------------------------------------------------

    async def assignments(self, request: web.Request) -> web.Response:
        """`GET /guardrails/{id}/assignments/keys`, or every guardrail's (`/guardrails/assignments/keys`)."""
        self._admin(request)
        rail_id = request.match_info.get("id")
        if rail_id is not None:
            self.book.get(rail_id)
        found = self.book.assignments(rail_id)
        offset, limit = page(request.query)
        return json_response({"data": [self._assignment(a) for a in found[offset:offset + limit]],
                              "total_count": len(found)})

    async def assign(self, request: web.Request) -> web.Response:
        self._admin(request)
        rail_id = request.match_info["id"]
        self.book.get(rail_id)
        hashes = await self._key_hashes(request)
        return json_response({"assigned_count": await self.book.assign(rail_id, hashes)})

    async def unassign(self, request: web.Request) -> web.Response:
        self._admin(request)
        rail_id = request.match_info["id"]
        self.book.get(rail_id)
        body = _KEY_HASHES(await read_json(request, self.max_body), "body")
        return json_response({"unassigned_count": await self.book.unassign(rail_id, body["key_hashes"])})

    async def _key_hashes(self, request: web.Request) -> list[str]:
        body = _KEY_HASHES(await read_json(request, self.max_body), "body")
        known = {k.hash for k in self.keys.all()}
        for i, key_hash in enumerate(body["key_hashes"]):
            if key_hash not in known:
                raise InvalidParameter(f"body.key_hashes[{i}]", f"no key with hash {key_hash}")
        hashes: list[str] = list(dict.fromkeys(body["key_hashes"]))
        return hashes

    def _assignment(self, assignment: GuardrailKeyRecord) -> dict[str, Any]:
        key = next((k for k in self.keys.all() if k.hash == assignment.key_hash), None)
        return {"id": assignment.id, "key_hash": assignment.key_hash, "guardrail_id": assignment.guardrail_id,
                "key_name": key.record.name if key else "", "key_label": key.record.label if key else "",
                "assigned_by": _ASSIGNED_BY, "created_at": iso(assignment.assigned_at)}

    # -- the calling key's models -----------------------------------------------------------------------------

    async def user_models(self, request: web.Request) -> web.Response:
        """`GET /models/user`: the models the key may use — those with an endpoint every guardrail of the key
        lets through (OpenRouter: filtered by provider preferences, privacy settings and guardrails)."""
        key = await self.keys.authenticate(request.headers.get("Authorization"))
        guard = self.guardrails.guard(key)
        return self.models.listing(request, guard.allows_model if guard is not None else None)


def _guardrail(rail: Guardrail) -> dict[str, Any]:
    record = rail.record
    out: dict[str, Any] = dict.fromkeys(RULE_FIELDS)
    out.update(rail.rules)
    out["include_byok_in_budgets"] = bool(out["include_byok_in_budgets"])
    if out["content_filter_builtins"] is not None:
        # The label is system-assigned (the spec's `ContentFilterBuiltinEntry`).
        out["content_filter_builtins"] = [{**e, "label": BUILTINS[e["slug"]][0]}
                                          for e in out["content_filter_builtins"]]
    out.update({"id": record.id, "name": record.name, "description": record.description, "workspace_id": None,
                "created_at": iso(record.created_at),
                "updated_at": iso(record.updated_at) if record.updated_at is not None else None})
    return out



__all__ = ["GuardrailsAPI"]
