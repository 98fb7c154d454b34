"""One Anthropic Messages stream → OpenAI `chat.completion.chunk` pieces.

Anthropic API reference, "Streaming Messages": `message_start` (id, input usage), then per content block
`content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`,
`signature_delta`, `citations_delta`) / `content_block_stop`, then `message_delta` (`stop_reason`, cumulative usage) and
`message_stop`; `ping` events anywhere, and an `error` event for a failure after the stream began.

Nothing is sent for `message_start`: the role travels on the first chunk with content, so an upstream that
fails before producing anything can still be replaced by another provider (the gateway commits to a stream
at its first chunk). Tool calls get an OpenAI `index` in the order their blocks start; a block of the
forced JSON tool (`params.JSON_TOOL`) streams as plain content. With `reasoning.exclude` the request asks
for no thinking text (`display: "omitted"`); any that arrives anyway is not passed on. A text block's web
search citations go out as one `annotations` delta when the block stops, spanning its text
(`citations.py`).
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages.citations import annotation
from crossroads.providers.anthropic_messages.errors import error_from_payload
from crossroads.providers.anthropic_messages.params import JSON_TOOL
from crossroads.providers.anthropic_messages.response import (
    finish_reason,
    reasoning_encrypted,
    reasoning_text,
    usage_from,
)
from crossroads.providers.base import Piece, StreamTranslator, malformed

_TEXT, _TOOL, _JSON, _THINKING, _OTHER = "text", "tool", "json", "thinking", "other"


class AnthropicStream(StreamTranslator):
    __slots__ = (
        "_blocks",
        "_cited",
        "_exclude",
        "_json_answer",
        "_reasoning_index",
        "_role_sent",
        "_tool_calls",
        "_usage",
        "_written",
    )

    def __init__(self, endpoint: Endpoint, *, exclude_reasoning: bool = False) -> None:
        super().__init__(endpoint)
        self._exclude = exclude_reasoning
        self._role_sent = False
        #: Anthropic block index → (kind, OpenAI tool-call index or reasoning-detail index).
        self._blocks: dict[int, tuple[str, int]] = {}
        self._tool_calls = 0
        self._reasoning_index = 0
        self._json_answer = False
        #: Usage fields as last reported (message_start, then cumulative message_delta updates).
        self._usage: dict[str, Any] = {}
        #: Characters of content sent so far, and per open text block where it began and its citations.
        self._written = 0
        self._cited: dict[int, tuple[int, list[Any]]] = {}

    def event(self, event: str | None, data: bytes) -> tuple[str | None, dict[str, Any]] | None:
        """An upstream SSE event as (its type, its payload); None for a `ping`. Raises `UpstreamError` for one
        that is not a JSON object."""
        if event == "ping":
            return None
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "Provider sent a malformed stream event", provider=self.endpoint.provider.name,
                                raw=data[:500].decode("utf-8", "replace"), error_type="provider_unavailable") from exc
        if not isinstance(payload, dict):
            raise malformed(self.endpoint, data)
        return payload.get("type") or event, payload

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        parsed = self.event(event, data)
        if parsed is None:
            return []
        kind, payload = parsed
        if kind == "content_block_delta":
            return self._delta(payload.get("index"), payload.get("delta") or {})
        if kind == "content_block_start":
            return self._start(payload.get("index"), payload.get("content_block") or {})
        if kind == "content_block_stop":
            return self._stop(payload.get("index"))
        if kind == "message_start":
            message = payload.get("message") or {}
            self.upstream_id = message.get("id")
            self._update_usage(message.get("usage"))
            return []
        if kind == "message_delta":
            self._update_usage(payload.get("usage"))
            native = (payload.get("delta") or {}).get("stop_reason")
            if native is None:
                return []
            self.native_finish_reason = native
            self.finish_reason = finish_reason(native, self._json_answer and self._tool_calls == 0)
            return [self._chunk({}, self.finish_reason, native)]
        if kind == "error":
            raise error_from_payload(payload.get("error"), 502, self.endpoint)
        return []  # content_block_stop, message_stop, and event types added after this was written

    # -- blocks ----------------------------------------------------------------------------------------------

    def _start(self, index: Any, block: dict[str, Any]) -> list[Piece]:
        if not isinstance(index, int):
            raise malformed(self.endpoint, orjson.dumps(block))
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = (_TEXT, 0)
            self._cited[index] = (self._written, list(block.get("citations") or ()))
            text = block.get("text") or ""
            return self._content(text) if text else []
        if kind == "tool_use" and block.get("name") == JSON_TOOL:
            self._blocks[index] = (_JSON, 0)
            self._json_answer = True
            return []
        if kind == "tool_use":
            position = self._tool_calls
            self._tool_calls += 1
            self._blocks[index] = (_TOOL, position)
            call = {"index": position, "id": block.get("id"), "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking":
            self._blocks[index] = (_THINKING, self._next_reasoning())
            return []
        if kind == "redacted_thinking":
            detail = reasoning_encrypted(block.get("data") or "", self._next_reasoning())
            self._blocks[index] = (_OTHER, 0)
            return [self._chunk({"reasoning_details": [detail]})]
        self._blocks[index] = (_OTHER, 0)
        return []

    def _delta(self, index: Any, delta: dict[str, Any]) -> list[Piece]:
        kind, position = self._blocks.get(index, (_OTHER, 0)) if isinstance(index, int) else (_OTHER, 0)
        delta_type = delta.get("type")
        if delta_type == "text_delta" and kind == _TEXT:
            text = delta.get("text") or ""
            return self._content(text) if text else []
        if delta_type == "citations_delta" and kind == _TEXT and index in self._cited:
            self._cited[index][1].append(delta.get("citation"))
            return []
        if delta_type == "input_json_delta" and kind in (_TOOL, _JSON):
            fragment = delta.get("partial_json") or ""
            if not fragment:
                return []
            if kind == _JSON:
                return self._content(fragment)
            self.completion_chars += len(fragment)
            return [self._chunk({"tool_calls": [{"index": position, "function": {"arguments": fragment}}]})]
        if delta_type == "thinking_delta" and kind == _THINKING and not self._exclude:
            text = delta.get("thinking") or ""
            if not text:
                return []
            return [self._chunk({"reasoning": text, "reasoning_details": [reasoning_text(text, position)]})]
        if delta_type == "signature_delta" and kind == _THINKING:
            # Kept even when the reasoning is excluded: it carries no reasoning, and sending it back keeps
            # thinking on through a tool loop.
            detail = reasoning_text("", position, delta.get("signature") or "")
            return [self._chunk({"reasoning_details": [detail]})]
        return []  # citations and deltas of blocks that have no Chat Completions form

    def _stop(self, index: Any) -> list[Piece]:
        start, citations = self._cited.pop(index, (0, []))
        found = [a for c in citations if (a := annotation(c, start, self._written)) is not None]
        return [self._chunk({"annotations": found})] if found else []

    def _next_reasoning(self) -> int:
        position = self._reasoning_index
        self._reasoning_index += 1
        return position

    # -- chunks ----------------------------------------------------------------------------------------------

    def _content(self, text: str) -> list[Piece]:
        self.completion_chars += len(text)
        self._written += len(text)
        return [self._chunk({"content": text})]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, native: str | None = None) \
            -> dict[str, Any]:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish,
                             "native_finish_reason": native}]}

    def _update_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._usage.update({k: v for k, v in raw.items() if v is not None})
            self.usage = usage_from(self._usage) or self.usage
