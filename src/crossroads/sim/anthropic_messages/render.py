"""Messages replies on the wire, field for field like Anthropic: the `message` body, and the SSE stream of
`event: <type>` events (`message_start`, `ping`, per block `content_block_start` / `content_block_delta` /
`content_block_stop`, `message_delta`, `message_stop`). A web search ("Web search tool") streams its
`server_tool_use` block's input as `input_json_delta`s, its `web_search_tool_result` block whole in its
start, and each citation of a text block as a `citations_delta` before the text; its searches are
`usage.server_tool_use.web_search_requests`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..wire import EventKind, StreamEvent
from .errors import STREAM_ERROR, request_id
from .plan import Block, layout, plan_reply
from .validate import Params

__all__ = ["MessagesExchange"]

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


def _event(kind: str, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessagesExchange:
    """One planned Messages reply: the non-stream body and the SSE events."""

    __slots__ = ("_blocks", "_chunk_tokens", "_id", "_output_tokens", "_params", "_request_id", "_stop_reason",
                 "_stop_sequence", "_thinking_tokens", "_usage")

    def __init__(self, params: Params, behaviour: Behaviour, serial: int) -> None:
        self._params = params
        blocks, output, thinking, stop_reason, stop_sequence = plan_reply(params, behaviour)
        self._blocks = blocks
        self._output_tokens = output
        self._thinking_tokens = thinking
        self._stop_reason = stop_reason
        self._stop_sequence = stop_sequence
        self._chunk_tokens = behaviour.chunk_tokens
        total, prefix, ttl = layout(params)
        read = min(behaviour.cached, total)
        written = max(prefix - read, 0) if ttl is not None else 0
        self._usage: dict[str, Any] = {
            "input_tokens": total - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written if ttl != "1h" else 0,
                               "ephemeral_1h_input_tokens": written if ttl == "1h" else 0},
            "output_tokens": output,
            "service_tier": "standard",
        }
        if params.thinking_budget is not None:
            self._usage["output_tokens_details"] = {"thinking_tokens": thinking}
        searches = sum(block.kind == "server_tool_use" for block in blocks)
        if searches:
            self._usage["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
        unique = reply.mix(reply.seed_of(params.messages), serial, time.time_ns())
        self._id = "msg_01" + reply.alnum_id(unique, 22)
        self._request_id = request_id(reply.mix(unique, 1))

    @property
    def stream(self) -> bool:
        return self._params.stream

    @property
    def generated_tokens(self) -> int:
        return self._output_tokens

    @property
    def reasoning_tokens(self) -> int:
        return self._thinking_tokens

    @property
    def usage(self) -> dict[str, Any]:
        return self._usage

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": _SSE if self._params.stream else _JSON,
            "request-id": self._request_id,
            "anthropic-organization-id": "00000000-0000-4000-8000-00000000c0de",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-input-tokens-limit": "2000000",
            "anthropic-ratelimit-output-tokens-limit": "400000",
        }

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None, stop_sequence: str | None,
                 usage: dict[str, Any]) -> dict[str, Any]:
        return {"id": self._id, "type": "message", "role": "assistant", "model": self._params.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage}

    def body(self) -> bytes:
        content = [block.rendered() for block in self._blocks]
        return orjson.dumps(self._message(content, self._stop_reason, self._stop_sequence, self._usage))

    def _block_events(self, index: int, block: Block) -> Iterator[tuple[bytes, EventKind, int]]:
        step = self._chunk_tokens
        if block.kind == "thinking":
            start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        elif block.kind in ("tool_use", "server_tool_use"):
            start = {"type": block.kind, "id": block.tool_id, "name": block.name, "input": {}}
        elif block.kind == "web_search_tool_result":
            start = block.rendered()
        else:
            start = {"type": "text", "text": ""}
        # The first block's start is framing; a later tool_use start already names a call, so it counts.
        kind = EventKind.CONTENT if index and block.kind == "tool_use" else EventKind.HEAD
        yield _event("content_block_start", {"type": "content_block_start", "index": index,
                                             "content_block": start}), kind, 0
        if block.kind == "tool_use":
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "input_json_delta", "partial_json": ""}}), \
                EventKind.HEAD, 0
        for citation in block.citations:
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "citations_delta", "citation": citation}}), \
                EventKind.HEAD, 0
        for at in range(0, len(block.pieces), step):
            text = "".join(block.pieces[at : at + step])
            if block.kind == "thinking":
                # Thinking time is paced before the first event (see the server), so these carry no tokens.
                delta: dict[str, Any] = {"type": "thinking_delta", "thinking": text}
                tokens = 0
            elif block.kind == "server_tool_use":  # the model writes the query; its tokens are not the answer's
                delta, tokens = {"type": "input_json_delta", "partial_json": text}, 0
            elif block.kind == "tool_use":
                delta, tokens = {"type": "input_json_delta", "partial_json": text}, reply.count_tokens(text)
            else:
                delta, tokens = {"type": "text_delta", "text": text}, reply.count_tokens(text)
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}), \
                EventKind.CONTENT, tokens
        if block.kind == "thinking":
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "signature_delta",
                                                           "signature": block.signature}}), EventKind.HEAD, 0
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index}), EventKind.HEAD, 0

    def events(self) -> Iterator[StreamEvent]:
        start_usage = {k: v for k, v in self._usage.items() if k != "output_tokens_details"}
        start_usage["output_tokens"] = 1
        message = self._message([], None, None, start_usage)
        yield StreamEvent(_event("message_start", {"type": "message_start", "message": message}), EventKind.HEAD)
        yield StreamEvent(_event("ping", {"type": "ping"}), EventKind.HEAD)
        for index, block in enumerate(self._blocks):
            for data, kind, tokens in self._block_events(index, block):
                yield StreamEvent(data, kind, tokens)
        usage = {k: v for k, v in self._usage.items() if k not in ("cache_creation", "service_tier")}
        yield StreamEvent(_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason, "stop_sequence": self._stop_sequence},
            "usage": usage,
        }), EventKind.TAIL)
        yield StreamEvent(_event("message_stop", {"type": "message_stop"}), EventKind.TAIL)

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{\n\n'

    def error_event(self) -> bytes:
        return b"event: error\ndata: " + STREAM_ERROR + b"\n\n"
