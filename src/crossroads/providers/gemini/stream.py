"""Translating one `streamGenerateContent?alt=sse` stream into OpenAI `chat.completion.chunk` pieces.

Each SSE event is a whole `GenerateContentResponse` carrying the *new* parts of each candidate (Gemini API
reference, "Generate content" → streamGenerateContent; https://ai.google.dev/api/generate-content). Text and
thought parts arrive a piece at a time and become `content` / `reasoning` deltas; a function call arrives
whole and becomes one tool-call delta with its id, name and full arguments. The candidate's
`finishReason` ends it, and the last `usageMetadata` seen is the stream's usage. An event holding an
`error` object (a failure after the stream started) raises `UpstreamError`; a first event with no
candidates and a `promptFeedback.blockReason` is a blocked prompt.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import Piece, StreamTranslator, malformed
from crossroads.providers.gemini.errors import blocked_prompt, error_from_payload
from crossroads.providers.gemini.grounding import annotations_of, searches
from crossroads.providers.gemini.response import (
    finish,
    fresh_id,
    image,
    reasoning_signature,
    reasoning_text,
    tool_call,
    usage_from,
)

__all__ = ["GeminiStream"]


class GeminiStream(StreamTranslator):
    """The state of one stream: what was reported so far, and per candidate whether its first chunk (with
    the role) was sent, how many tool calls and reasoning details it produced (the next detail `index`),
    whether a thought-text entry is still open, and whether it ended."""

    __slots__ = (
        "_calls",
        "_details",
        "_ended",
        "_searches",
        "_seed",
        "_started",
        "_text",
        "_thinking",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._seed: str | None = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}
        self._details: dict[int, int] = {}
        self._ended: set[int] = set()
        self._thinking: set[int] = set()  # candidates whose last reasoning detail is an open text entry
        #: Per candidate, its text so far (grounding segments are placed in it), and the searches reported.
        self._text: dict[int, list[str]] = {}
        self._searches = 0

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        if not data.strip():
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "Provider sent a malformed stream event", provider=self.endpoint.provider.name,
                                raw=data[:500].decode("utf-8", "replace"),
                                error_type="provider_unavailable") from exc
        if not isinstance(chunk, dict):
            raise malformed(self.endpoint, data)
        if isinstance(chunk.get("error"), dict):
            raise error_from_payload(chunk["error"], None, self.endpoint)
        if self.upstream_id is None and isinstance(chunk.get("responseId"), str):
            self.upstream_id = chunk["responseId"]
        if self._seed is None:
            self._seed = self.upstream_id or fresh_id()
        usage = usage_from(chunk.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        candidates = chunk.get("candidates")
        if not candidates:
            feedback = chunk.get("promptFeedback")
            if not self._started and isinstance(feedback, dict) and feedback.get("blockReason"):
                raise blocked_prompt(feedback, self.endpoint)
            return []
        if not isinstance(candidates, list):
            raise malformed(self.endpoint, data)
        choices = [choice for position, candidate in enumerate(candidates) if isinstance(candidate, dict)
                   and (choice := self._choice(candidate, position)) is not None]
        if self._searches and self.usage is not None:
            self.usage.web_search_requests = self._searches
        return [{"choices": choices}] if choices else []

    def _choice(self, candidate: dict[str, Any], position: int) -> dict[str, Any] | None:
        index = candidate.get("index", position)
        if not isinstance(index, int) or index in self._ended:
            return None
        delta: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            delta["role"] = "assistant"
        content = candidate.get("content") or {}
        for part in content.get("parts") or ():
            if isinstance(part, dict):
                self._part(part, index, delta)
        grounding = candidate.get("groundingMetadata")
        if grounding is not None:
            self._searches = max(self._searches, searches(grounding))
            cited = annotations_of(grounding, "".join(self._text.get(index, ())))
            if cited:
                delta["annotations"] = cited
        native = candidate.get("finishReason")
        if not isinstance(native, str):
            return {"index": index, "delta": delta, "finish_reason": None, "native_finish_reason": None,
                    "logprobs": None} if delta else None
        self._ended.add(index)
        reason = finish(native, self._calls.get(index, 0) > 0)
        if index == 0 or self.finish_reason is None:
            self.finish_reason, self.native_finish_reason = reason, native
        return {"index": index, "delta": delta, "finish_reason": reason, "native_finish_reason": native,
                "logprobs": None}

    def _part(self, part: dict[str, Any], index: int, delta: dict[str, Any]) -> None:
        call = None
        text = part.get("text")
        if part.get("thought") and isinstance(text, str):
            if text:
                delta["reasoning"] = delta.get("reasoning", "") + text
                self._thought(delta, index, text)
        elif isinstance(text, str):
            if text:
                delta["content"] = delta.get("content", "") + text
                self.completion_chars += len(text)
                self._text.setdefault(index, []).append(text)
        elif isinstance(part.get("functionCall"), dict):
            ordinal = self._calls.get(index, 0)
            self._calls[index] = ordinal + 1
            assert self._seed is not None
            call = tool_call(part["functionCall"], self._seed, index, ordinal)
            self.completion_chars += len(call["function"]["arguments"])
            delta.setdefault("tool_calls", []).append({"index": ordinal, **call})
        elif isinstance(part.get("inlineData"), dict):
            delta.setdefault("images", []).append(image(part["inlineData"]))
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            owner = call["id"] if call else None
            self._thinking.discard(index)
            detail = reasoning_signature(signature, owner, self._details.get(index, 0))
            self._details[index] = detail["index"] + 1
            delta.setdefault("reasoning_details", []).append(detail)
        elif not part.get("thought"):
            self._thinking.discard(index)

    def _thought(self, delta: dict[str, Any], index: int, text: str) -> None:
        """Thought text continues the open `reasoning.text` entry (same `index`) or opens the next one."""
        details = delta.setdefault("reasoning_details", [])
        if index in self._thinking:
            if details and details[-1]["type"] == "reasoning.text":
                details[-1]["text"] += text
                return
            position = self._details[index] - 1
        else:
            self._thinking.add(index)
            position = self._details.get(index, 0)
            self._details[index] = position + 1
        details.append(reasoning_text(text, position))

