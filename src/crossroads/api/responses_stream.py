"""The Responses API event stream, written from the gateway's chat-shaped stream pieces.

One `EventWriter` per stream keeps the state the events need — which output item is open, its text or
arguments so far, the next `sequence_number` — and writes the sequence OpenAI documents
(https://platform.openai.com/docs/api-reference/responses-streaming): `response.created`,
`response.in_progress`, then per item `output_item.added` → its deltas → its `.done` events →
`output_item.done`, and finally `response.completed` (or `response.incomplete`) with the whole response.
Items never interleave: an item is done before the next one is added. A citation of the message's text is a
`response.output_text.annotation.added` event (its `annotation_index` counting the text's annotations), and
the annotation is in the `output_text` part when the item is done. A failure after the stream began ends it
with `response.failed`.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.api.responses_output import (
    call_item,
    citations,
    message_item,
    opaque,
    reasoning_item,
    response_object,
    search_item,
    usage_object,
)
from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.plugins.web import query_of, shown_searches
from crossroads.providers.base import Piece
from crossroads.routing.outcome import OpenStream
from crossroads.schema.responses import ResponsesRequest


class EventWriter:
    """Writes one response's events; a `StreamWriter` (`api/inference.py`)."""

    __slots__ = ("_annotations", "_call", "_details", "_kind", "_open", "_prefixes", "_reasoning", "_text", "finish",
                 "generation", "hide_reasoning", "model", "output", "request", "seq")

    def __init__(self, request: ResponsesRequest, generation: Generation) -> None:
        self.request = request
        self.generation = generation
        self.hide_reasoning = request.reasoning.exclude
        self.model = generation.model
        self.seq = 0
        #: Items done so far, in order.
        self.output: list[dict[str, Any]] = []
        self.finish: str | None = None
        #: The open item: its kind ("reasoning", "message", "call" or None) and its parts so far.
        self._kind: str | None = None
        self._open: dict[str, Any] = {}
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._details: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        #: The open call's index among the chat deltas' `tool_calls`.
        self._call: int | None = None
        #: The open item's delta events, up to the delta: event kind → encoded prefix.
        self._prefixes: dict[str, bytes] = {}

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self.seq
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

    def _delta_event(self, kind: str, fields: dict[str, Any], delta: str) -> bytes:
        """A delta of the open item. Deltas are most of a stream's events: all but the text and the sequence
        number is encoded once per item and kind."""
        prefix = self._prefixes.get(kind)
        if prefix is None:
            head = orjson.dumps({"type": kind, **self._where(), **fields})
            prefix = self._prefixes[kind] = b"event: " + kind.encode() + b"\ndata: " + head[:-1] + b',"delta":'
        seq = self.seq
        self.seq += 1
        return b"".join((prefix, orjson.dumps(delta), b',"sequence_number":', str(seq).encode(), b"}\n\n"))

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return response_object(self.request, self.generation, self.model, status, self.output, **fields)

    def start(self, stream: OpenStream) -> bytes:
        if stream.model is not None:
            self.model = stream.model.id
        head = self._response("in_progress")
        out = [self._event("response.created", {"response": head}),
               self._event("response.in_progress", {"response": head})]
        if stream.endpoint is not None:
            for _ in range(shown_searches(self.request, stream.endpoint)):
                self._search(query_of(self.request), out)
        return b"".join(out)

    def _search(self, query: str, out: list[bytes]) -> None:
        """A web search made for the `web_search` tool, as OpenAI streams one: the item added, in progress,
        searching, completed, done. The search was made before the stream (by the backend), or is the
        provider's, whose progress does not reach this API: the item is done before the reply's text."""
        index = len(self.output)
        item = search_item(self.generation, index, query, "in_progress")
        where = {"output_index": index, "item_id": item["id"]}
        out.append(self._event("response.output_item.added", {"output_index": index, "item": item}))
        for stage in ("in_progress", "searching", "completed"):
            out.append(self._event(f"response.web_search_call.{stage}", dict(where)))
        done = {**item, "status": "completed"}
        out.append(self._event("response.output_item.done", {"output_index": index, "item": done}))
        self.output.append(done)

    def pieces(self, pieces: list[Piece]) -> bytes:
        out: list[bytes] = []
        for piece in pieces:
            for choice in piece.get("choices", ()):
                if choice.get("index", 0) != 0:
                    continue  # the Responses API has one output; `n` is not one of its parameters
                delta = choice.get("delta")
                if delta:
                    self._delta(delta, out)
                if choice.get("finish_reason"):
                    self.finish = choice["finish_reason"]
        return b"".join(out)

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        reasoning = None if self.hide_reasoning else delta.get("reasoning")
        details = delta.get("reasoning_details")
        if details and self.hide_reasoning:
            details = opaque(details)
        if reasoning or details:
            if self._kind != "reasoning":
                self._close(out)
                self._begin("reasoning", reasoning_item(self.generation, len(self.output), None, None, "in_progress"),
                            out)
            if details:
                _merge(self._details, details)
            if reasoning:
                if not self._reasoning:
                    out.append(self._event("response.reasoning_summary_part.added", {
                        **self._where(), "summary_index": 0, "part": {"type": "summary_text", "text": ""}}))
                self._reasoning.append(reasoning)
                out.append(self._delta_event("response.reasoning_summary_text.delta", {"summary_index": 0},
                                             reasoning))
        content = delta.get("content")
        if content:
            if self._kind != "message":
                self._close(out)
                self._begin("message", {**message_item(self.generation, len(self.output), "", [], "in_progress"),
                                        "content": []}, out)
                out.append(self._event("response.content_part.added", {
                    **self._where(), "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}))
            self._text.append(content)
            out.append(self._delta_event("response.output_text.delta", {"content_index": 0, "logprobs": []},
                                         content))
        if delta.get("annotations"):
            self._annotate(citations(delta["annotations"]), out)
        for call in delta.get("tool_calls") or ():
            index = call.get("index", 0)
            function = call.get("function") or {}
            if self._kind != "call" or self._call != index:
                self._close(out)
                self._begin("call", call_item(self.generation, len(self.output), call.get("id") or "",
                                              function.get("name") or "", "", "in_progress"), out)
                self._call = index
            arguments = function.get("arguments")
            if arguments:
                self._text.append(arguments)
                out.append(self._delta_event("response.function_call_arguments.delta", {}, arguments))

    def _annotate(self, annotations: list[dict[str, Any]], out: list[bytes]) -> None:
        """Each annotation of the open message's text, as a `response.output_text.annotation.added` event; one
        that comes while no message is open has no text to annotate and is dropped."""
        if self._kind != "message":
            return
        for annotation in annotations:
            out.append(self._event("response.output_text.annotation.added", {
                **self._where(), "content_index": 0, "annotation_index": len(self._annotations),
                "annotation": annotation}))
            self._annotations.append(annotation)

    def _where(self) -> dict[str, Any]:
        return {"item_id": self._open["id"], "output_index": len(self.output)}

    def _begin(self, kind: str, item: dict[str, Any], out: list[bytes]) -> None:
        """Open an item (the one before is closed: its id and `output_index` count it)."""
        self._kind, self._open = kind, item
        out.append(self._event("response.output_item.added", {"output_index": len(self.output), "item": item}))

    def _close(self, out: list[bytes]) -> None:
        """The open item's `.done` events; the item joins `output`."""
        kind = self._kind
        if kind is None:
            return
        where = self._where()
        text = "".join(self._text)
        if kind == "reasoning":
            summary = "".join(self._reasoning)
            item = reasoning_item(self.generation, len(self.output), summary, self._details)
            if summary:
                part = {"type": "summary_text", "text": summary}
                out.append(self._event("response.reasoning_summary_text.done",
                                       {**where, "summary_index": 0, "text": summary}))
                out.append(self._event("response.reasoning_summary_part.done",
                                       {**where, "summary_index": 0, "part": part}))
        elif kind == "message":
            item = message_item(self.generation, len(self.output), text, self._annotations)
            out.append(self._event("response.output_text.done",
                                   {**where, "content_index": 0, "text": text, "logprobs": []}))
            out.append(self._event("response.content_part.done",
                                   {**where, "content_index": 0, "part": item["content"][0]}))
        else:
            item = {**self._open, "status": "completed", "arguments": text}
            out.append(self._event("response.function_call_arguments.done",
                                   {**where, "name": item["name"], "arguments": text}))
        out.append(self._event("response.output_item.done", {"output_index": len(self.output), "item": item}))
        self.output.append(item)
        self._kind, self._open, self._call = None, {}, None
        self._prefixes.clear()
        self._text, self._reasoning, self._details, self._annotations = [], [], [], []

    def end(self, generation: Generation, charge: Charge) -> bytes:
        out: list[bytes] = []
        self._close(out)
        assert generation.usage is not None
        response = self._response("completed", finish=self.finish, usage=usage_object(generation.usage, charge))
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        return b"".join(out)

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        # The response is committed (200 and events sent): the failure is told in-band, as the final event.
        # What was cut off stays out of `output`: a client replays only items that were done.
        return self._event("response.failed", {"response": self._response("failed", error=error)})


def _merge(into: list[dict[str, Any]], details: list[dict[str, Any]]) -> None:
    """Reasoning details streamed in fragments, joined as chat clients join them: fragments with the same
    `index` extend one detail (text appended, other fields set)."""
    for detail in details:
        index = detail.get("index")
        same = next((d for d in into if index is not None and d.get("index") == index), None)
        if same is None:
            into.append(dict(detail))
            continue
        for key, value in detail.items():
            if key in ("text", "summary") and isinstance(value, str):
                same[key] = (same.get(key) or "") + value
            elif value:
                same[key] = value


__all__ = ["EventWriter"]
