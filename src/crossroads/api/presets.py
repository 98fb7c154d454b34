"""Presets (`/api/v1/presets…`), in the shapes of OpenRouter's spec (`Preset`, `PresetDesignatedVersion`,
`ListPresetsResponse`, ...): list, get, versions, and create-or-version from a request body.

The spec's `POST /presets/{slug}/chat/completions` (and `/messages`, `/responses`) saves a new version of the
preset from a request body, with the management key. Called with an API key instead (which the spec
refuses with 403), Crossroads answers the request through the preset, as if it named `"preset": "<slug>"`:
one URL per preset that clients can use as a base URL.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from crossroads.api.body import read_json
from crossroads.api.inference import Inference
from crossroads.api.listing import integer, iso, page
from crossroads.api.render import json_response
from crossroads.errors import InvalidParameter, NotFound
from crossroads.ledger.keys import KeyRing
from crossroads.presets import apply as presets
from crossroads.presets.book import Preset, PresetBook
from crossroads.storage.base import PresetVersionRecord

#: URL-safe: what fits in `@preset/<slug>` and a path segment.
_SLUG: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Placeholders a body needs to pass its API's checks when it only carries a configuration.
_FILLERS: Final[Mapping[str, Mapping[str, Any]]] = {
    "chat": {"messages": [{"role": "user", "content": "-"}]},
    "messages": {"messages": [{"role": "user", "content": "-"}], "max_tokens": 1},
    "responses": {"input": "-"},
}
#: Who created a version: the management key (the spec requires a string; there are no users here).
_CREATOR: Final = "management-key"


class PresetsAPI:
    def __init__(self, keys: KeyRing, book: PresetBook, faces: Mapping[str, Inference], max_body: int) -> None:
        self.keys = keys
        self.book = book
        #: The inference path of each API a preset can be created from (and used through): chat, messages,
        #: responses.
        self.faces = faces
        self.max_body = max_body

    async def index(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        offset, limit = page(request.query)
        everything = self.book.all()
        return json_response({"data": [_preset(p) for p in everything[offset:offset + limit]],
                              "total_count": len(everything)})

    async def get(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        preset = self.book.get(request.match_info["slug"])
        return json_response({"data": {**_preset(preset), "designated_version": _version(preset.version)}})

    async def versions(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        offset, limit = page(request.query)
        versions = await self.book.versions(request.match_info["slug"])
        return json_response({"data": [_version(v) for v in versions[offset:offset + limit]],
                              "total_count": len(versions)})

    async def version(self, request: web.Request) -> web.Response:
        self.keys.require_admin(request.headers.get("Authorization"))
        slug = request.match_info["slug"]
        number = integer(request.match_info, "version", None, 1, None)
        for version in await self.book.versions(slug):
            if version.version == number:
                return json_response({"data": _version(version)})
        raise NotFound(f"Preset '{slug}' has no version {number}")

    def from_body(self, api: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The handler of `POST /presets/{slug}/<api>`."""
        face = self.faces[api]
        dialect = face.presets.dialect if face.presets is not None else presets.CHAT

        async def handle(request: web.Request) -> web.StreamResponse:
            slug = request.match_info["slug"]
            if not self.keys.is_admin(face.face.credentials(request)):
                return await face.handle(request, preset=slug)
            if not _SLUG.fullmatch(slug):
                raise InvalidParameter("slug", "expected 1 to 64 letters, digits, '.', '_' or '-', starting with "
                                               "a letter or digit")
            body = await read_json(request, self.max_body)
            if not isinstance(body, dict):
                raise InvalidParameter("body", "expected a JSON object")
            # Checked as the API checks a request (placeholders where only a configuration was sent), so a
            # preset never holds what every request using it would then be refused for.
            face.face.parse({**_FILLERS[api], **body}, "-", {})
            system_prompt, config = presets.from_request(body, dialect)
            preset = await self.book.save(slug, system_prompt, config)
            return json_response({"data": {**_preset(preset), "designated_version": _version(preset.version)}})

        return handle


def _preset(preset: Preset) -> dict[str, Any]:
    record = preset.record
    return {"id": record.id, "name": record.name, "slug": record.slug, "description": record.description,
            "status": record.status, "designated_version_id": record.designated_version_id,
            "creator_user_id": None, "workspace_id": None, "created_at": iso(record.created_at),
            "updated_at": iso(record.updated_at), "status_updated_at": None}


def _version(version: PresetVersionRecord) -> dict[str, Any]:
    return {"id": version.id, "preset_id": version.preset_id, "version": version.version,
            "system_prompt": version.system_prompt, "config": _config(version), "creator_id": _CREATOR,
            "created_at": iso(version.created_at), "updated_at": iso(version.created_at)}


def _config(version: PresetVersionRecord) -> Any:
    return orjson.loads(version.config)



__all__ = ["PresetsAPI"]
