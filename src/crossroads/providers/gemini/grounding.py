"""Grounding with Google Search → OpenRouter's `url_citation` annotations.

Gemini API reference, `GroundingMetadata` (https://ai.google.dev/api/generate-content#groundingmetadata): a
candidate answered with the `google_search` tool carries `webSearchQueries` (the searches made),
`groundingChunks` (`web: {uri, title}`: the sources) and `groundingSupports` (a `segment` of the answer —
`startIndex` / `endIndex` counted in bytes of its UTF-8 text, and the segment's `text` — with the
`groundingChunkIndices` of the sources that support it). Each (segment, source) pair becomes one
annotation, its indices in characters; sources no segment cites get one annotation each at 0, 0. In a
stream the metadata comes with the candidate's last chunks, its segments counted in the whole answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def annotations_of(metadata: Any, text: str) -> list[dict[str, Any]]:
    """The annotations for a candidate's `groundingMetadata`, placed in its whole text."""
    if not isinstance(metadata, Mapping):
        return []
    chunks = [c.get("web") if isinstance(c, Mapping) else None for c in metadata.get("groundingChunks") or ()]
    encoded = text.encode()
    out: list[dict[str, Any]] = []
    cited: set[int] = set()
    for support in metadata.get("groundingSupports") or ():
        segment = support.get("segment") if isinstance(support, Mapping) else None
        if not isinstance(segment, Mapping):
            continue
        start = _chars(encoded, segment.get("startIndex", 0))
        end = _chars(encoded, segment.get("endIndex", 0))
        for i in support.get("groundingChunkIndices") or ():
            if isinstance(i, int) and 0 <= i < len(chunks) and (found := _annotation(chunks[i], start, end,
                                                                                     segment.get("text"))):
                out.append(found)
                cited.add(i)
    for i, web in enumerate(chunks):
        if i not in cited and (found := _annotation(web, 0, 0, None)):
            out.append(found)
    return out


def searches(metadata: Any) -> int:
    """The searches a candidate's grounding made."""
    if not isinstance(metadata, Mapping):
        return 0
    queries = metadata.get("webSearchQueries")
    return len(queries) if isinstance(queries, list) else 0


def _chars(encoded: bytes, index: Any) -> int:
    """A byte offset of the UTF-8 text as a character offset."""
    if not isinstance(index, int) or index <= 0:
        return 0
    return len(encoded[:index].decode("utf-8", "ignore"))


def _annotation(web: Any, start: int, end: int, text: Any) -> dict[str, Any] | None:
    if not isinstance(web, Mapping) or not isinstance(web.get("uri"), str):
        return None
    return {"type": "url_citation", "url_citation": {
        "url": web["uri"], "title": web.get("title") or web["uri"], "content": text if isinstance(text, str) else "",
        "start_index": start, "end_index": end}}


__all__ = ["annotations_of", "searches"]
