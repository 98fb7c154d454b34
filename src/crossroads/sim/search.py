"""Web search in two search APIs' shapes, for the gateway's `web` plugin: `POST /exa/search` (Exa's) and
`POST /tavily/search` (Tavily's), so a base URL of `{sim}/exa` or `{sim}/tavily` stands in for the real API.

Results are deterministic: for a query, up to `numResults` / `max_results` (default 10, at most 20) pages
under `https://{n}.example.org/`, each titled after the query, whose text quotes it. A request without the
API's credential header gets a 401.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

_WORD = re.compile(r"[a-z0-9]+")


def results(query: str, count: int) -> list[dict[str, str]]:
    slug = "-".join(_WORD.findall(query.lower())[:6]) or "page"
    out = []
    for n in range(1, count + 1):
        digest = hashlib.blake2b(f"{query}\x00{n}".encode(), digest_size=4).hexdigest()
        out.append({"url": f"https://site{n}.example.org/{slug}-{digest}",
                    "title": f"Result {n} about {query[:60]}",
                    "text": f"Page {n} ({digest}) on {query[:200]}: what the web says about it."})
    return out


def _count(value: Any) -> int:
    return max(1, min(int(value), 20)) if isinstance(value, int) and not isinstance(value, bool) else 10


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("query"), str) else None


async def exa_search(request: web.Request) -> web.Response:
    if not request.headers.get("x-api-key"):
        return web.json_response({"error": "missing x-api-key"}, status=401)
    body = await _body(request)
    if body is None:
        return web.json_response({"error": "query is required"}, status=400)
    found = results(body["query"], _count(body.get("numResults")))
    return web.json_response({"requestId": "sim", "results": [{**r, "id": r["url"], "score": 1.0 / (i + 1)}
                                                                for i, r in enumerate(found)]})


async def tavily_search(request: web.Request) -> web.Response:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return web.json_response({"detail": {"error": "Unauthorized: missing API key"}}, status=401)
    body = await _body(request)
    if body is None:
        return web.json_response({"detail": {"error": "query is required"}}, status=400)
    found = results(body["query"], _count(body.get("max_results")))
    return web.json_response({"query": body["query"], "results": [
        {"url": r["url"], "title": r["title"], "content": r["text"], "score": 1.0 / (i + 1)}
        for i, r in enumerate(found)]})


__all__ = ["exa_search", "results", "tavily_search"]
