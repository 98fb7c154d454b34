"""Web search APIs, for the `web` plugin: one row per API shape, each saying how a query is sent and how
results are read back.

    exa      POST {base}/search   x-api-key      {"query", "numResults", "contents": {"text": ...}}
                                                 → {"results": [{"url", "title", "text"}]}       (docs.exa.ai)
    tavily   POST {base}/search   Bearer token   {"query", "max_results"}
                                                 → {"results": [{"url", "title", "content"}]}    (docs.tavily.com)

The search backend is an operator's setting (`CROSSROADS_WEB_SEARCH_API`, `_URL`, `_KEY`); the Simulator
serves both shapes (`sim/search.py`). Like a provider call, it goes through the transport, and its failures
are `UpstreamError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest
from crossroads.providers.transport import Transport

#: How much of a page's text a result carries into the prompt.
SNIPPET_CHARS: Final = 1000


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    content: str


@dataclass(frozen=True, slots=True)
class SearchAPI:
    """One search API's shape."""

    default_url: str
    auth: Callable[[str], dict[str, str]]
    body: Callable[[str, int], dict[str, Any]]
    results: Callable[[Any], list[Mapping[str, Any]]]
    content_field: str


def _results(payload: Any) -> list[Mapping[str, Any]]:
    results = payload.get("results") if isinstance(payload, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


SEARCH_APIS: Final[Mapping[str, SearchAPI]] = {
    "exa": SearchAPI(
        default_url="https://api.exa.ai",
        auth=lambda key: {"x-api-key": key},
        body=lambda query, count: {"query": query, "numResults": count,
                                   "contents": {"text": {"maxCharacters": SNIPPET_CHARS}}},
        results=_results,
        content_field="text",
    ),
    "tavily": SearchAPI(
        default_url="https://api.tavily.com",
        auth=lambda key: {"authorization": f"Bearer {key}"},
        body=lambda query, count: {"query": query, "max_results": count},
        results=_results,
        content_field="content",
    ),
}


class WebSearch:
    """A configured search backend."""

    def __init__(self, transport: Transport, api: str, url: str | None, key: str | None) -> None:
        self.transport = transport
        self.name = api
        self.api = SEARCH_APIS[api]
        self.url = (url or self.api.default_url).rstrip("/") + "/search"
        self.key = key or ""

    async def search(self, query: str, count: int) -> list[SearchResult]:
        api = self.api
        request = UpstreamRequest(self.url, {"content-type": "application/json", **api.auth(self.key)},
                                  orjson.dumps(api.body(query, count)))
        upstream = await self.transport.send(request, "web search")
        body = await upstream.read()
        if upstream.status != 200:
            raise UpstreamError(502, f"The web search backend answered {upstream.status}", provider="web search",
                                raw=body[:500].decode("utf-8", "replace"), error_type="provider_unavailable")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "The web search backend sent a malformed reply", provider="web search",
                                error_type="provider_unavailable") from exc
        found = []
        for result in api.results(payload)[:count]:
            url = result.get("url")
            if isinstance(url, str) and url:
                content = result.get(api.content_field)
                found.append(SearchResult(url, str(result.get("title") or url),
                                          content[:SNIPPET_CHARS] if isinstance(content, str) else ""))
        return found


__all__ = ["SEARCH_APIS", "SearchAPI", "SearchResult", "WebSearch"]
