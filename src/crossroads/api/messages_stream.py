"""Replies in the Messages API's shape: an OpenAI-shaped message (what every adapter returns) → Anthropic
content blocks, usage → Anthropic's usage object, and a stream of OpenAI-shaped pieces → Anthropic's events.

Reference: Anthropic API reference, "Streaming Messages": `message_start`, then per content block
`content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`,
`signature_delta`) / `content_block_stop`, then `message_delta` (`stop_reason`, usage) and `message_stop`;
a failure after the stream began is an `error` event. Reasoning that came from a Messages API endpoint
arrives as `reasoning_details` carrying each block's signature, and goes back out as the same thinking
blocks; reasoning from other formats (plain `reasoning` text) becomes thinking blocks with an empty
signature.

Citations ("Web search tool"): the reply's `url_citation` annotations become `web_search_result_location`
citations (`url`, `title`, `cited_text`; no `encrypted_index` to give, so an empty one) on the text blocks
they cover: a whole reply's text is split where a cited span begins or ends, each block carrying the
citations that span it (those placed nowhere go on the last block); in a stream each annotation is a
`citations_delta` of the open text block.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.plugins.web import found, query_of, shown_searches
from crossroads.providers.base import Piece
from crossroads.routing.outcome import OpenStream
from crossroads.schema.request import ChatRequest
from crossroads.schema.usage import Usage

#: The Messages API's own stop reasons; an endpoint speaking it reports them as `native_finish_reason`.
STOP_REASONS: Final = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                                 "model_context_window_exceeded"})


def usage_fields(usage: Usage) -> dict[str, Any]:
    """Anthropic's usage: `input_tokens` excludes cache reads and writes, which are reported apart."""
    read = usage.cached_tokens or 0
    written = (usage.cache_write_tokens or 0) + (usage.cache_write_1h_tokens or 0)
    fields: dict[str, Any] = {"input_tokens": max(usage.prompt_tokens - read - written, 0),
                              "cache_creation_input_tokens": written, "cache_read_input_tokens": read,
                              "output_tokens": usage.completion_tokens}
    if usage.web_search_requests:
        fields["server_tool_use"] = {"web_search_requests": usage.web_search_requests, "web_fetch_requests": 0}
    return fields


def search_blocks(generation: Generation, index: int, query: str, results: Any) -> list[dict[str, Any]]:
    """A web search made for the `web_search` tool, as Anthropic's reply shows its own ("Web search tool"): a
    `server_tool_use` block (`srvtoolu_…`, the query as its input), then its `web_search_tool_result` with
    the results (`url_citation` annotations here; no `encrypted_content` to give, so an empty one)."""
    tool_id = f"srvtoolu_{generation.id[4:]}_{index}"
    content = [{"type": "web_search_result", "url": found["url"], "title": found["title"], "encrypted_content": "",
                "page_age": None} for found in map(citation, results) if found is not None]
    caller = {"type": "direct"}  # the model's own call, not one made from code execution
    return [{"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query},
             "caller": caller},
            {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": content, "caller": caller}]


def content_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A whole reply's message → thinking, text and tool_use blocks, in that order."""
    blocks = _thinking(message)
    content = message.get("content")
    if isinstance(content, str) and content:
        blocks += cited_text(content, message.get("annotations") or ())
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                       "input": _arguments(function.get("arguments"))})
    return blocks


def citation(annotation: Any) -> dict[str, Any] | None:
    """A chat `url_citation` annotation as a Messages API web search citation."""
    found = annotation.get("url_citation") if isinstance(annotation, Mapping) and \
        annotation.get("type") == "url_citation" else None
    if not isinstance(found, Mapping) or not isinstance(found.get("url"), str):
        return None
    return {"type": "web_search_result_location", "url": found["url"], "title": found.get("title") or found["url"],
            "cited_text": found.get("content") or "", "encrypted_index": ""}


def cited_text(text: str, annotations: Any) -> list[dict[str, Any]]:
    """The text as text blocks split at the edges of its cited spans, each with the citations spanning it."""
    spans: list[tuple[int, int, dict[str, Any]]] = []
    loose: list[dict[str, Any]] = []
    for annotation in annotations:
        found = citation(annotation)
        if found is None:
            continue
        place = annotation["url_citation"]
        start, end = place.get("start_index"), place.get("end_index")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            spans.append((start, end, found))
        else:
            loose.append(found)
    edges = sorted({0, len(text), *(edge for start, end, _ in spans for edge in (start, end))})
    blocks: list[dict[str, Any]] = []
    for start, end in itertools.pairwise(edges):
        block: dict[str, Any] = {"type": "text", "text": text[start:end]}
        covering = [found for s, e, found in spans if s <= start and end <= e]
        if covering:
            block["citations"] = covering
        blocks.append(block)
    if loose:
        blocks[-1]["citations"] = [*blocks[-1].get("citations", ()), *loose]
    return blocks


def _thinking(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    details = message.get("reasoning_details")
    if not details:
        text = message.get("reasoning")
        return [{"type": "thinking", "thinking": text, "signature": ""}] if text else []
    blocks: list[dict[str, Any]] = []
    for detail in details:
        kind = detail.get("type")
        if kind == "reasoning.text":
            blocks.append({"type": "thinking", "thinking": detail.get("text") or "",
                           "signature": detail.get("signature") or ""})
        elif kind == "reasoning.summary":
            blocks.append({"type": "thinking", "thinking": detail.get("summary") or "", "signature": ""})
        elif kind == "reasoning.encrypted" and detail.get("data"):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    return blocks


def _arguments(arguments: Any) -> Any:
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}  # a model's broken JSON has no `input` form; the call still reaches the client by name


def event(name: bytes, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_TEXT, _THINKING, _TOOL = "text", "thinking", "tool"


class EventWriter:
    """One stream's events. Content blocks are opened as pieces need them and closed when another kind of
    content begins; each block's index counts from 0 in the order blocks open.

    From an endpoint that speaks the Messages API itself (`native_format`), the adapter relays the
    upstream's events (pieces `{"event": bytes}`, and `{"message_start": payload}` once): they go out as they
    came, only `message_start` naming the message as the gateway does."""

    __slots__ = ("_error_body", "_index", "_native_format", "_open", "_relay", "_stop", "_stop_reason",
                 "generation", "request")

    def __init__(self, generation: Generation, stop_reason: Callable[[str | None, str | None], str | None],
                 error_body: Callable[[CrossroadsError], bytes], native_format: str | None = None,
                 request: ChatRequest | None = None) -> None:
        self.generation = generation
        #: The request, whose web search tool's searches open the reply (`_searches`).
        self.request = request
        self._native_format = native_format
        self._relay = False
        self._stop_reason = stop_reason
        self._error_body = error_body
        self._index = -1
        #: The open block: (kind, key), the key being a tool call's or a reasoning detail's index.
        self._open: tuple[str, Any] | None = None
        self._stop: str | None = None

    def start(self, stream: OpenStream) -> bytes:
        if stream.endpoint is not None and stream.endpoint.provider.wire_format == self._native_format:
            self._relay = True
            return b""  # the upstream's own message_start comes first among the pieces
        usage = stream.translator.usage
        message: dict[str, Any] = {"id": self.generation.id, "type": "message", "role": "assistant",
                   "model": stream.model.id if stream.model else self.generation.model, "content": [],
                   "stop_reason": None, "stop_sequence": None,
                   "usage": usage_fields(usage) if usage else {"input_tokens": 0, "output_tokens": 0}}
        return event(b"message_start", {"type": "message_start", "message": message}) + self._searches(stream)

    def _searches(self, stream: OpenStream) -> bytes:
        """The searches made for the request's web search tool, as blocks ahead of the reply's text: the
        backend's with their results; the provider's, whose results come as the text's citations."""
        request = self.request
        if request is None or stream.endpoint is None:
            return b""
        out: list[bytes] = []
        for number in range(shown_searches(request, stream.endpoint)):
            use, result = search_blocks(self.generation, number, query_of(request), found(request, stream.endpoint))
            self._begin(None, None, {**use, "input": {}}, out)
            out.append(self._block_delta({"type": "input_json_delta", "partial_json": orjson.dumps(
                use["input"]).decode()}))
            self._begin(None, None, result, out)
            self._close(out)
        return b"".join(out)

    def pieces(self, pieces: list[Piece]) -> bytes:
        if self._relay:
            return b"".join([piece.get("event") or self._message_start(piece["message_start"]) for piece in pieces])
        out: list[bytes] = []
        for piece in pieces:
            for choice in piece.get("choices") or ():
                delta = choice.get("delta")
                if delta:
                    self._delta(delta, out)
                if choice.get("finish_reason"):
                    self._stop = self._stop_reason(choice.get("native_finish_reason"), choice["finish_reason"])
        return b"".join(out)

    def end(self, generation: Generation, charge: Charge) -> bytes:
        if self._relay:
            return b""  # the upstream's message_delta and message_stop went out with the pieces
        out: list[bytes] = []
        self._close(out)
        usage = generation.usage
        out.append(event(b"message_delta", {
            "type": "message_delta", "delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None},
            "usage": usage_fields(usage) if usage else {"output_tokens": 0}}))
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        return b"".join(out)

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        return b"event: error\ndata: " + self._error_body(error) + b"\n\n"

    def _message_start(self, payload: dict[str, Any]) -> bytes:
        message = {**payload.get("message", {}), "id": self.generation.id, "model": self.generation.model}
        return event(b"message_start", {**payload, "message": message})

    # -- blocks ----------------------------------------------------------------------------------------------

    def _delta(self, delta: Mapping[str, Any], out: list[bytes]) -> None:
        details = delta.get("reasoning_details")
        if details:
            for detail in details:
                self._reasoning(detail, out)
        elif delta.get("reasoning"):
            self._thinking_text(None, delta["reasoning"], out)
        content = delta.get("content")
        if content:
            if self._open is None or self._open[0] != _TEXT:
                self._begin(_TEXT, None, {"type": "text", "text": ""}, out)
            out.append(self._block_delta({"type": "text_delta", "text": content}))
        if delta.get("annotations") and self._open is not None and self._open[0] == _TEXT:
            for annotation in delta["annotations"]:
                found = citation(annotation)
                if found is not None:
                    out.append(self._block_delta({"type": "citations_delta", "citation": found}))
        for call in delta.get("tool_calls") or ():
            key = call.get("index", 0)
            function = call.get("function") or {}
            if self._open != (_TOOL, key):
                self._begin(_TOOL, key, {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                                         "input": {}}, out)
            if function.get("arguments"):
                out.append(self._block_delta({"type": "input_json_delta", "partial_json": function["arguments"]}))

    def _reasoning(self, detail: Mapping[str, Any], out: list[bytes]) -> None:
        kind = detail.get("type")
        key = detail.get("index")
        if kind == "reasoning.encrypted":
            if detail.get("data"):
                self._begin(None, None, {"type": "redacted_thinking", "data": detail["data"]}, out)
                self._close(out)
            return
        text = detail.get("text") if kind == "reasoning.text" else detail.get("summary")
        if text:
            self._thinking_text(key, text, out)
        if detail.get("signature"):
            if self._open != (_THINKING, key):
                self._begin(_THINKING, key, {"type": "thinking", "thinking": "", "signature": ""}, out)
            out.append(self._block_delta({"type": "signature_delta", "signature": detail["signature"]}))

    def _thinking_text(self, key: Any, text: str, out: list[bytes]) -> None:
        if self._open != (_THINKING, key):
            self._begin(_THINKING, key, {"type": "thinking", "thinking": "", "signature": ""}, out)
        out.append(self._block_delta({"type": "thinking_delta", "thinking": text}))

    def _begin(self, kind: str | None, key: Any, block: dict[str, Any], out: list[bytes]) -> None:
        self._close(out)
        self._index += 1
        self._open = (kind or "", key)
        out.append(event(b"content_block_start",
                         {"type": "content_block_start", "index": self._index, "content_block": block}))

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            self._open = None
            out.append(event(b"content_block_stop", {"type": "content_block_stop", "index": self._index}))

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return event(b"content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})


__all__ = ["STOP_REASONS", "EventWriter", "citation", "cited_text", "content_blocks", "event", "search_blocks",
           "usage_fields"]
