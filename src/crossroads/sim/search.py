"""Web search in four search APIs' shapes, for the gateway's `web` plugin, so a base URL of `{sim}/exa`,
`{sim}/tavily`, `{sim}/brave/res/v1` or `{sim}/searxng` stands in for the real API:

    POST /exa/search                   Exa's: JSON `query`, `numResults`, `includeDomains`, `excludeDomains`;
                                       401 without `x-api-key`
    POST /tavily/search                Tavily's: JSON `query`, `max_results`, `include_domains`,
                                       `exclude_domains`; 401 without a Bearer token
    GET  /brave/res/v1/web/search      Brave's: `q`, `count` (1 to 20, else 422); 422 without
                                       `X-Subscription-Token`; descriptions highlight the query in `<strong>`
    GET  /searxng/search               SearXNG's: `q`, `format=json` (any other format is refused with a 403,
                                       as by an instance whose settings do not enable it); one page of 10

Results are deterministic: for a query, up to the asked count (default 10, at most 20) pages under
`https://site{n}.example.org/`, each titled after the query, whose text quotes it; every shape answers the
same pages.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

_WORD = re.compile(r"[a-z0-9]+")


def results(query: str, count: int, include: list[str] | None = None, exclude: list[str] | None = None) \
        -> list[dict[str, str]]:
    """`count` pages; with `include`, on those domains in turn; never on an `exclude`d one."""
    slug = "-".join(_WORD.findall(query.lower())[:6]) or "page"
    out: list[dict[str, str]] = []
    n = 0
    while len(out) < count and n < count + 100:
        n += 1
        host = include[(n - 1) % len(include)] if include else f"site{n}.example.org"
        if any(host == domain or host.endswith(f".{domain}") for domain in exclude or ()):
            continue
        digest = hashlib.blake2b(f"{query}\x00{n}".encode(), digest_size=4).hexdigest()
        out.append({"url": f"https://{host}/{slug}-{digest}",
                    "title": f"Result {n} about {query[:60]}",
                    "text": f"Page {n} ({digest}) on {query[:200]}: what the web says about it."})
    return out


def _domains(value: Any) -> list[str] | None:
    return [d for d in value if isinstance(d, str)] if isinstance(value, list) else None


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
    found = results(body["query"], _count(body.get("numResults")), _domains(body.get("includeDomains")),
                    _domains(body.get("excludeDomains")))
    return web.json_response({"requestId": "sim", "results": [{**r, "id": r["url"], "score": 1.0 / (i + 1)}
                                                                for i, r in enumerate(found)]})


async def tavily_search(request: web.Request) -> web.Response:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return web.json_response({"detail": {"error": "Unauthorized: missing API key"}}, status=401)
    body = await _body(request)
    if body is None:
        return web.json_response({"detail": {"error": "query is required"}}, status=400)
    found = results(body["query"], _count(body.get("max_results")), _domains(body.get("include_domains")),
                    _domains(body.get("exclude_domains")))
    return web.json_response({"query": body["query"], "results": [
        {"url": r["url"], "title": r["title"], "content": r["text"], "score": 1.0 / (i + 1)}
        for i, r in enumerate(found)]})


def _brave_error(code: str, detail: str) -> web.Response:
    return web.json_response({"type": "ErrorResponse", "error": {
        "id": "sim", "status": 422, "code": code, "detail": detail, "meta": {}}, "time": 0}, status=422)


async def brave_search(request: web.Request) -> web.Response:
    if not request.headers.get("x-subscription-token"):
        return _brave_error("SUBSCRIPTION_TOKEN_INVALID", "The provided subscription token is invalid.")
    query = request.query.get("q", "")
    count = request.query.get("count", "20")
    if not query or not count.isdigit() or not 1 <= int(count) <= 20:
        return _brave_error("VALIDATION", "Unable to validate request parameter(s)")
    found = results(query, int(count))
    return web.json_response({"type": "search", "query": {"original": query}, "mixed": {"type": "mixed"},
                              "web": {"type": "search", "family_friendly": True, "results": [
        {"type": "search_result", "url": r["url"], "title": r["title"],
         "description": r["text"].replace(query[:200], f"<strong>{query[:200]}</strong>", 1),
         "is_source_local": False, "language": "en", "meta_url": {"scheme": "https"}}
        for r in found]}})


async def searxng_search(request: web.Request) -> web.Response:
    if request.query.get("format") != "json":
        return web.Response(status=403, text="Forbidden")
    query = request.query.get("q", "")
    if not query:
        return web.Response(status=400, text="Bad Request")
    found = results(query, 10)
    return web.json_response({"query": query, "number_of_results": len(found), "results": [
        {"url": r["url"], "title": r["title"], "content": r["text"], "engine": "sim", "engines": ["sim"],
         "positions": [i + 1], "score": 1.0 / (i + 1), "category": "general", "template": "default.html"}
        for i, r in enumerate(found)], "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
        "unresponsive_engines": []})


__all__ = ["brave_search", "exa_search", "results", "searxng_search", "tavily_search"]
