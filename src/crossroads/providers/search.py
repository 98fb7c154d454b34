"""Web search APIs, for the `web` plugin: one row per API shape, each saying how a query is sent and how
results are read back.

    exa      POST {base}/search        x-api-key             JSON {"query", "numResults", "contents": {"text"},
                                                                   "includeDomains", "excludeDomains"}
                                       → {"results": [{"url", "title", "text"}]}              (docs.exa.ai)
    tavily   POST {base}/search        Bearer token          JSON {"query", "max_results", "include_domains",
                                                                   "exclude_domains"}
                                       → {"results": [{"url", "title", "content"}]}           (docs.tavily.com)
    brave    GET  {base}/web/search    X-Subscription-Token  ?q=…&count=… (count at most 20)
                                       → {"web": {"results": [{"url", "title", "description"}]}}
                                                                  (api-dashboard.search.brave.com/app/documentation)
    searxng  GET  {base}/search        none (Bearer if a key is set, for an instance behind a proxy)
                                       ?q=…&format=json (no count: a page of results, cut here)
                                       → {"results": [{"url", "title", "content"}]}   (docs.searxng.org/dev/search_api)

A search may be kept to some domains or kept off others (the `web` plugin's `include_domains` /
`exclude_domains`, the web search tool's `allowed_domains` / `excluded_domains`): Exa and Tavily take the
lists in the request (`filters`); Brave's and SearXNG's results are filtered once received, so they may be
fewer than asked for.

The search backend is an operator's setting (`CROSSROADS_WEB_SEARCH_API`, `_URL`, `_KEY`); SearXNG is
self-hosted, so it has no default URL. The Simulator serves every shape (`sim/search.py`). Like a provider
call, a search goes through the transport, and its failures are `UpstreamError`s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlencode, urlsplit

import orjson

from crossroads.errors import UpstreamError
from crossroads.providers.base import UpstreamRequest
from crossroads.providers.transport import Transport

#: How much of a page's text a result carries into the prompt.
SNIPPET_CHARS: Final = 1000
_TAG: Final = re.compile(r"<[^>]{1,20}>")


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    content: str


@dataclass(frozen=True, slots=True)
class SearchAPI:
    """One search API's shape: the request (`method` to `path` under the base URL, with `params` — the query
    string of a GET, the JSON body of a POST — and the `auth` headers) and where the reply keeps its results
    (`results`: the keys leading to the list) and each result's text (`content_field`)."""

    default_url: str | None
    method: Literal["GET", "POST"]
    path: str
    auth: Callable[[str], dict[str, str]]
    params: Callable[[str, int], dict[str, Any]]
    results: tuple[str, ...]
    content_field: str
    #: Whether titles and text hold HTML highlighting (Brave's `<strong>`), removed before the model sees it.
    markup: bool = False
    #: The request fields that keep a search to domains, and off others (None: the API has none).
    filters: tuple[str, str] | None = None

    def request(self, base: str, key: str, query: str, count: int, domains: Domains = ((), ())) -> UpstreamRequest:
        url = base.rstrip("/") + self.path
        headers = {"accept": "application/json", **self.auth(key)}
        params = self.params(query, count)
        if self.filters is not None:
            params.update({name: list(given) for name, given in zip(self.filters, domains, strict=True) if given})
        if self.method == "GET":
            return UpstreamRequest(f"{url}?{urlencode(params)}", headers, b"", method="GET")
        return UpstreamRequest(url, {**headers, "content-type": "application/json"}, orjson.dumps(params))

    def found(self, payload: Any) -> list[Mapping[str, Any]]:
        for key in self.results:
            payload = payload.get(key) if isinstance(payload, dict) else None
        return [r for r in payload if isinstance(r, dict)] if isinstance(payload, list) else []


SEARCH_APIS: Final[Mapping[str, SearchAPI]] = {
    "exa": SearchAPI(
        default_url="https://api.exa.ai", method="POST", path="/search",
        auth=lambda key: {"x-api-key": key},
        params=lambda query, count: {"query": query, "numResults": count,
                                     "contents": {"text": {"maxCharacters": SNIPPET_CHARS}}},
        results=("results",), content_field="text", filters=("includeDomains", "excludeDomains"),
    ),
    "tavily": SearchAPI(
        default_url="https://api.tavily.com", method="POST", path="/search",
        auth=lambda key: {"authorization": f"Bearer {key}"},
        params=lambda query, count: {"query": query, "max_results": count},
        results=("results",), content_field="content", filters=("include_domains", "exclude_domains"),
    ),
    "brave": SearchAPI(
        default_url="https://api.search.brave.com/res/v1", method="GET", path="/web/search",
        auth=lambda key: {"x-subscription-token": key},
        params=lambda query, count: {"q": query, "count": min(count, 20)},
        results=("web", "results"), content_field="description", markup=True,
    ),
    "searxng": SearchAPI(
        default_url=None, method="GET", path="/search",
        auth=lambda key: {"authorization": f"Bearer {key}"} if key else {},
        params=lambda query, count: {"q": query, "format": "json"},
        results=("results",), content_field="content",
    ),
}


#: Domains a search is kept to, and kept off.
Domains = tuple[Sequence[str], Sequence[str]]


def within(url: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a result's host is one of `include` (or under it), if any are given, and none of `exclude`."""
    host = (urlsplit(url).hostname or "").lower()

    def under(domain: str) -> bool:
        domain = domain.lower().removeprefix("www.")
        return host == domain or host.endswith(f".{domain}") or host == f"www.{domain}"

    return (not include or any(map(under, include))) and not any(map(under, exclude))


class WebSearch:
    """A configured search backend."""

    def __init__(self, transport: Transport, api: str, url: str | None, key: str | None) -> None:
        self.transport = transport
        self.name = api
        self.api = SEARCH_APIS[api]
        base = url or self.api.default_url
        if base is None:
            raise ValueError(f"the {api} search API has no default URL")
        self.url = base
        self.key = key or ""

    async def search(self, query: str, count: int, include: Sequence[str] = (), exclude: Sequence[str] = ()) \
            -> list[SearchResult]:
        """Up to `count` results for `query`, on the `include`d domains if any, off the `exclude`d ones."""
        api = self.api
        request = api.request(self.url, self.key, query, count, (include, exclude))
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
        for result in api.found(payload)[:count]:
            url = result.get("url")
            if isinstance(url, str) and url and within(url, include, exclude):
                title = str(result.get("title") or url)
                content = result.get(api.content_field)
                content = content if isinstance(content, str) else ""
                if api.markup:
                    title, content = _TAG.sub("", title), _TAG.sub("", content)
                found.append(SearchResult(url, title, content[:SNIPPET_CHARS]))
        return found


__all__ = ["SEARCH_APIS", "Domains", "SearchAPI", "SearchResult", "WebSearch", "within"]
