"""The `web` plugin (and the `:online` variant): web search for a request, by the serving endpoint's own
provider or by the gateway's search backend, cited back as `annotations`.

As OpenRouter describes it (openrouter.ai/docs/guides/features/plugins/web-search), `engine` says who
searches:

    "native"        the provider's built-in search (catalog feature `web_search`: OpenAI's search models,
                    Anthropic's `web_search` server tool, Gemini's `google_search`); the adapter sends it as
                    the endpoint's form of `web_search_options`, and the reply's citations come back as the
                    adapter translates them. Endpoints that have it are preferred (`routing/plan.py`).
    any other name  the gateway's search backend (`providers/search.py`), whichever API it speaks.
    none given      native on an endpoint that has it, the backend on any other.

A backend search is made once, before routing (`search_into`): the request's last user message is the query
(`max_results` — default 5 — bounds the results, `include_domains` / `exclude_domains` keep them to domains or
off them; `search_prompt` replaces the instruction that introduces them). The endpoints that use it
(`uses_results`) get the results after that message's text, with the instruction to cite them as markdown
links (`fit`), and the reply carries them as `url_citation` annotations. A search is one `web_search` unit of
the serving endpoint's pricing (`ledger/cost.py`): the backend's when the endpoint used its results, the
provider's own as its reply reports them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final

from msgspec import structs

from crossroads.catalog.types import Endpoint
from crossroads.errors import InvalidParameter
from crossroads.providers.search import SearchResult, WebSearch
from crossroads.schema.request import Applied, ChatRequest, Message, Plugin
from crossroads.schema.server_tools import DEFAULT_RESULTS

NATIVE: Final = "native"
#: The longest query sent: the start of the last user message.
QUERY_CHARS: Final = 1000
#: OpenRouter's own wording.
DEFAULT_PROMPT: Final = ("A web search was conducted on {date}. Incorporate the following web search results into "
                         "your response.\n\nIMPORTANT: Cite them using markdown links named using the domain of the "
                         "source.\nExample: [nytimes.com](https://nytimes.com/some-page).")
_NO_BACKEND: Final = ("{what} needs a web search backend, and none is configured on this gateway "
                      "(CROSSROADS_WEB_SEARCH_API)")


def engine_of(plugin: Plugin) -> str | None:
    engine = plugin.options.get("engine")
    return engine if isinstance(engine, str) else None


async def search_into(request: ChatRequest, plugin: Plugin, search: WebSearch | None) -> ChatRequest:
    """The request with what its search needs before routing: the backend's results for its last user message
    (kept in `Applied`, added to the prompt per endpoint by `fit`), and `web_search_options` for the endpoints
    that search natively."""
    engine = engine_of(plugin)
    params = request.params
    if engine in (None, NATIVE) and "web_search_options" not in params:
        params = {**params, "web_search_options": native_options(plugin)}
    query = _query(request.messages)
    applied = request.applied or Applied()
    request = structs.replace(request, params=params, applied=structs.replace(applied, web_query=query))
    if engine == NATIVE or search is None:
        if engine is not None and engine != NATIVE:
            raise _no_backend(plugin)
        return request  # without a backend, an endpoint that cannot search natively refuses it (`fit`)
    if not query:
        return request
    results = await search.search(query, int(plugin.options.get("max_results", DEFAULT_RESULTS)),
                                  plugin.options.get("include_domains") or (),
                                  plugin.options.get("exclude_domains") or ())
    prompt = plugin.options.get("search_prompt") or DEFAULT_PROMPT.format(date=datetime.date.today().isoformat())
    found = "\n\n".join(f"[{n}] {r.title}\nURL: {r.url}\n{r.content}" for n, r in enumerate(results, 1))
    addition = f"{prompt}\n\n{found}" if results else f"{prompt}\n\n(The search found nothing.)"
    applied = request.applied or Applied()
    # The prompt is counted with the results, so routing leaves out endpoints they would not fit.
    return structs.replace(request, prompt_chars=request.prompt_chars + len(addition) + 2,
                           applied=structs.replace(applied, web_searches=applied.web_searches + 1,
                                                   web_context=addition, web_engine=search.name,
                                                   web_results=applied.web_results + len(results),
                                                   annotations=(*applied.annotations, *citations(results))))


def native_options(plugin: Plugin) -> dict[str, Any]:
    """The plugin's options in OpenAI's `web_search_options` form, which every adapter translates."""
    options: dict[str, Any] = {}
    if isinstance(plugin.options.get("user_location"), Mapping):
        options["user_location"] = plugin.options["user_location"]
    for name in ("max_uses", "search_context_size"):
        if plugin.options.get(name) is not None:
            options[name] = plugin.options[name]
    for ours, theirs in (("include_domains", "allowed_domains"), ("exclude_domains", "blocked_domains")):
        if plugin.options.get(ours):
            options[theirs] = list(plugin.options[ours])
    return options


def searches_natively(request: ChatRequest, endpoint: Endpoint) -> bool:
    """Whether the endpoint answers the request's `web` plugin with its provider's own search."""
    plugin = request.plugin("web")
    if plugin is None:
        return False
    native = request.native
    if plugin.tool and native is not None and native.wire_format == endpoint.provider.wire_format:
        return True  # the client's own server tool, sent as written (`Plugins.prepare`)
    return endpoint.features.web_search and engine_of(plugin) in (None, NATIVE)


def uses_results(request: ChatRequest, endpoint: Endpoint) -> bool:
    """Whether the endpoint is given the backend's results (and so is charged for, and cites, them)."""
    applied = request.applied
    return applied is not None and applied.web_context is not None and not searches_natively(request, endpoint)


def as_tool(request: ChatRequest) -> bool:
    """Whether the request asked for web search as a tool, which its reply shows as a tool call."""
    plugin = request.plugin("web")
    return plugin is not None and plugin.tool


def shown_searches(request: ChatRequest, endpoint: Endpoint) -> int:
    """How many searches a stream shows as tool calls before the reply's text, once it knows its endpoint:
    the backend's where the endpoint uses its results, one where the provider searches (its count comes
    with the usage, at the end)."""
    if not as_tool(request):
        return 0
    if uses_results(request, endpoint):
        return request.applied.web_searches if request.applied is not None else 0
    return 1 if searches_natively(request, endpoint) else 0


def query_of(request: ChatRequest) -> str:
    """What the request's web search looks for (its last user message)."""
    applied = request.applied
    return applied.web_query if applied is not None and applied.web_query is not None else \
        _query(request.messages)


def found(request: ChatRequest, endpoint: Endpoint) -> list[Mapping[str, Any]]:
    """The backend's results the endpoint was given, as `url_citation` annotations (none where it searched
    natively)."""
    applied = request.applied
    return list(applied.annotations) if applied is not None and uses_results(request, endpoint) else []


def fit(request: ChatRequest, endpoint: Endpoint) -> list[Message]:
    """The messages `endpoint` receives: with the backend's results where it uses them. An endpoint that
    neither searches natively nor has results to use (no backend) refuses the request."""
    if searches_natively(request, endpoint):
        return request.messages
    plugin = request.plugin("web")
    applied = request.applied
    addition = applied.web_context if applied is not None else None
    if addition is None:
        if plugin is not None and engine_of(plugin) != NATIVE and _last_user_text(request.messages)[1]:
            raise _no_backend(plugin)
        return request.messages
    index, _ = _last_user_text(request.messages)
    messages = list(request.messages)
    message = messages[index]
    content = message["content"]
    if isinstance(content, str):
        messages[index] = {**message, "content": f"{content}\n\n{addition}"}
    else:
        messages[index] = {**message, "content": [*content, {"type": "text", "text": addition}]}
    return messages


def _query(messages: Sequence[Message]) -> str:
    return _last_user_text(messages)[1][:QUERY_CHARS]


def _no_backend(plugin: Plugin) -> InvalidParameter:
    if plugin.tool:
        return InvalidParameter("tools", _NO_BACKEND.format(what="the web search tool"))
    return InvalidParameter("plugins", _NO_BACKEND.format(what="the plugin 'web'"))


def citations(results: Sequence[SearchResult]) -> list[Mapping[str, Any]]:
    """OpenRouter's `url_citation` annotations; where in the text each is cited is set once the text is known
    (`place`)."""
    return [{"type": "url_citation", "url_citation": {"url": r.url, "title": r.title, "content": r.content,
                                                      "start_index": 0, "end_index": 0}} for r in results]


def place(annotations: Sequence[Mapping[str, Any]], text: str) -> list[dict[str, Any]]:
    """The annotations with `start_index`/`end_index` at the first place the text cites each URL (0 and 0
    where it does not)."""
    placed = []
    for annotation in annotations:
        citation = dict(annotation["url_citation"])
        start = text.find(citation["url"])
        if start >= 0:
            citation["start_index"], citation["end_index"] = start, start + len(citation["url"])
        placed.append({"type": "url_citation", "url_citation": citation})
    return placed


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> tuple[int, str]:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return index, content
        if isinstance(content, list):
            return index, " ".join(p["text"] for p in content if p.get("type") == "text")
    return -1, ""


__all__ = ["DEFAULT_PROMPT", "NATIVE", "as_tool", "citations", "fit", "found", "native_options", "place",
           "query_of", "search_into", "searches_natively", "shown_searches", "uses_results"]
