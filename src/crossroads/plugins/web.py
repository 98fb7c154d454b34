"""The `web` plugin (and the `:online` variant): web search results added to the prompt, cited back as
`annotations`.

As OpenRouter describes it (openrouter.ai/docs/guides/features/plugins/web-search): the request's last user
message is the query (`search_prompt` replaces the instruction that introduces the results, `max_results`
— default 5 — bounds them); the results go to the model after that message's text, with the instruction to
cite them as markdown links; the reply's message carries them as `url_citation` annotations. One search is
one `web_search` unit of the serving endpoint's pricing (`ledger/cost.py`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final

from msgspec import structs

from crossroads.errors import InvalidParameter
from crossroads.providers.search import SearchResult, WebSearch
from crossroads.schema.chat import measure_messages
from crossroads.schema.request import Applied, ChatRequest, Plugin

DEFAULT_RESULTS: Final = 5
#: OpenRouter's own wording.
DEFAULT_PROMPT: Final = ("A web search was conducted on {date}. Incorporate the following web search results into "
                         "your response.\n\nIMPORTANT: Cite them using markdown links named using the domain of the "
                         "source.\nExample: [nytimes.com](https://nytimes.com/some-page).")


async def search_into(request: ChatRequest, plugin: Plugin, search: WebSearch | None) -> ChatRequest:
    """The request with the results of a search for its last user message added to that message."""
    if search is None:
        raise InvalidParameter("plugins", "the plugin 'web' needs a web search backend, and none is configured "
                                          "on this gateway (CROSSROADS_WEB_SEARCH_API)")
    index, query = _last_user_text(request.messages)
    if not query:
        return request
    results = await search.search(query[:1000], int(plugin.options.get("max_results", DEFAULT_RESULTS)))
    prompt = plugin.options.get("search_prompt") or DEFAULT_PROMPT.format(date=datetime.date.today().isoformat())
    found = "\n\n".join(f"[{n}] {r.title}\nURL: {r.url}\n{r.content}" for n, r in enumerate(results, 1))
    addition = f"{prompt}\n\n{found}" if results else f"{prompt}\n\n(The search found nothing.)"
    messages = list(request.messages)
    message = messages[index]
    content = message["content"]
    if isinstance(content, str):
        messages[index] = {**message, "content": f"{content}\n\n{addition}"}
    else:
        messages[index] = {**message, "content": [*content, {"type": "text", "text": addition}]}
    chars, images, has_files, has_audio = measure_messages(messages)
    applied = request.applied or Applied()
    return structs.replace(request, messages=messages, prompt_chars=chars, images=images, has_files=has_files,
                           has_audio=has_audio,
                           applied=structs.replace(applied, web_searches=applied.web_searches + 1,
                                                   annotations=(*applied.annotations, *citations(results))))


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


__all__ = ["DEFAULT_PROMPT", "citations", "place", "search_into"]
