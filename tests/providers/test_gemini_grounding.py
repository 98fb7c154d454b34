"""Gemini's grounding metadata as `url_citation` annotations: byte offsets become character offsets."""

from __future__ import annotations

from crossroads.providers.gemini.grounding import annotations_of, searches

TEXT = "Café au lait. Crème brûlée!"
METADATA = {
    "webSearchQueries": ["french desserts", "coffee"],
    "groundingChunks": [{"web": {"uri": "https://r.example/1", "title": "one.example"}},
                        {"web": {"uri": "https://r.example/2", "title": "two.example"}},
                        {"web": {"uri": "https://r.example/3"}}],
    "groundingSupports": [
        {"segment": {"endIndex": len("Café au lait.".encode()), "text": "Café au lait."}, "groundingChunkIndices": [0]},
        {"segment": {"startIndex": len("Café au lait. ".encode()), "endIndex": len(TEXT.encode()),
                     "text": "Crème brûlée!"}, "groundingChunkIndices": [1, 7]}],
}


def test_segments_are_placed_in_characters_and_uncited_sources_at_zero() -> None:
    found = annotations_of(METADATA, TEXT)
    spans = [(a["url_citation"]["url"], a["url_citation"]["start_index"], a["url_citation"]["end_index"])
             for a in found]
    assert spans == [("https://r.example/1", 0, 13), ("https://r.example/2", 14, len(TEXT)),
                     ("https://r.example/3", 0, 0)]
    assert TEXT[14:len(TEXT)] == found[1]["url_citation"]["content"]
    assert found[2]["url_citation"]["title"] == "https://r.example/3"  # no title: the URL
    assert searches(METADATA) == 2 and searches(None) == 0 and annotations_of("junk", TEXT) == []
