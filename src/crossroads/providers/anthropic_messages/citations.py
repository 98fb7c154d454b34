"""Anthropic's web search citations → OpenRouter's `url_citation` annotations.

Anthropic API reference, "Web search tool": a reply that searched holds `server_tool_use` and
`web_search_tool_result` blocks (no Chat Completions form: not passed on), then text blocks whose
`citations` are `web_search_result_location`s (`url`, `title`, `cited_text`, `encrypted_index`); a stream
sends each as a `citations_delta` of its text block. Each citation becomes one annotation spanning the
text block it is attached to, in the reply's whole text; `cited_text` is its `content`. The searches made
are `usage.server_tool_use.web_search_requests` (`response.usage_from`).
"""

from __future__ import annotations

from typing import Any, Final

WEB_CITATION: Final = "web_search_result_location"


def annotation(citation: Any, start: int, end: int) -> dict[str, Any] | None:
    """One citation of the text between `start` and `end`, or None for a citation of another kind (of a
    document, a search result block...)."""
    if not isinstance(citation, dict) or citation.get("type") != WEB_CITATION or not citation.get("url"):
        return None
    return {"type": "url_citation", "url_citation": {
        "url": citation["url"], "title": citation.get("title") or citation["url"],
        "content": citation.get("cited_text") or "", "start_index": start, "end_index": end}}


def annotations_of(citations: Any, start: int, end: int) -> list[dict[str, Any]]:
    if not isinstance(citations, list):
        return []
    return [found for citation in citations if (found := annotation(citation, start, end)) is not None]


__all__ = ["WEB_CITATION", "annotation", "annotations_of"]
