"""Gemini replies on the wire, field for field like Google: the `GenerateContentResponse` body, and the stream
of them — `data: <json>\\r\\n\\r\\n` events with `alt=sse`, else one JSON array written as it grows. Usage leaves
out zero counts, as proto3 JSON does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..wire import EventKind, StreamEvent, interleave
from .errors import STREAM_ERROR
from .plan import Candidate, count_prompt_tokens, plan_candidates, plan_thoughts
from .validate import Request

__all__ = ["GeminiExchange"]

_JSON = "application/json; charset=UTF-8"
_SSE = "text/event-stream"


class GeminiExchange:
    """One planned reply: the `GenerateContentResponse` body, or the stream of them."""

    __slots__ = ("_candidates", "_chunk_tokens", "_id", "_parsed", "_prompt", "_started", "_thoughts", "_usage")

    def __init__(self, parsed: Request, behaviour: Behaviour, serial: int) -> None:
        self._started = time.monotonic()
        self._parsed = parsed
        seed = reply.seed_of({"system": parsed.system, "contents": parsed.contents})
        text, media = count_prompt_tokens(parsed.system, parsed.contents)
        prompt = text + media
        thoughts = plan_thoughts(parsed, behaviour, seed)
        self._thoughts = thoughts
        self._candidates = plan_candidates(parsed, behaviour, seed, thoughts)
        output = sum(candidate.tokens for candidate in self._candidates)
        cached = min(behaviour.cached, prompt)
        self._prompt = prompt
        self._usage = _without_zeros({
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + thoughts * parsed.candidates,
            "cachedContentTokenCount": cached,
            "thoughtsTokenCount": thoughts * parsed.candidates,
            "promptTokensDetails": _modalities(text, media),
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": cached}] if cached else None,
        })
        self._chunk_tokens = behaviour.chunk_tokens
        self._id = reply.alnum_id(reply.mix(seed, serial, time.time_ns()), 22)

    @property
    def stream(self) -> bool:
        return self._parsed.stream

    @property
    def generated_tokens(self) -> int:
        return sum(c.tokens for c in self._candidates) + self._thoughts * len(self._candidates)

    @property
    def reasoning_tokens(self) -> int:
        return self._thoughts

    @property
    def usage(self) -> dict[str, Any]:
        return self._usage

    def headers(self) -> dict[str, str]:
        elapsed = int((time.monotonic() - self._started) * 1000)
        return {
            "Content-Type": _SSE if self.stream and self._parsed.sse else _JSON,
            "Vary": "Origin, X-Origin, Referer",
            "Server-Timing": f"gfet4t7; dur={elapsed}",
            "X-Content-Type-Options": "nosniff",
        }

    # non-stream

    def body(self) -> bytes:
        return orjson.dumps(self._response([self._candidate(c, _parts(c)) for c in self._candidates], self._usage))

    def _response(self, candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": self._parsed.model,
                "responseId": self._id}

    @staticmethod
    def _candidate(candidate: Candidate, parts: list[dict[str, Any]], final: bool = True) -> dict[str, Any]:
        content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
        out: dict[str, Any] = {"content": content}
        if final:
            out["finishReason"] = candidate.finish
            if candidate.logprobs is not None:
                out.update(_logprobs(candidate.logprobs))
            if candidate.grounding is not None:  # in a stream, with the last chunk
                out["groundingMetadata"] = candidate.grounding
        out["index"] = candidate.index
        return out

    # stream

    def _frame(self, payload: dict[str, Any], last: bool = False) -> bytes:
        data = orjson.dumps(payload)
        if self._parsed.sse:
            return b"data: " + data + b"\r\n\r\n"
        return data + (b"]" if last else b",\r\n")

    def _candidate_events(self, candidate: Candidate) -> Iterator[tuple[dict[str, Any], EventKind, int]]:
        if candidate.thoughts:
            yield self._candidate(candidate, [{"text": "".join(candidate.thoughts), "thought": True}], False), \
                EventKind.CONTENT, 0
        signature = candidate.signature
        if candidate.calls:
            parts: list[dict[str, Any]] = [{"functionCall": call} for call in candidate.calls]
            if signature:
                parts[0]["thoughtSignature"] = signature
            yield self._candidate(candidate, parts, False), EventKind.CONTENT, candidate.tokens
        step = self._chunk_tokens
        for at in range(0, len(candidate.pieces), step):
            text = "".join(candidate.pieces[at: at + step])
            part: dict[str, Any] = {"text": text}
            if signature and at == 0:
                part["thoughtSignature"] = signature
            yield self._candidate(candidate, [part], False), EventKind.CONTENT, reply.count_tokens(text)
        yield self._candidate(candidate, [{"text": ""}]), EventKind.TAIL, 0

    def events(self) -> Iterator[StreamEvent]:
        if not self._parsed.sse:
            yield StreamEvent(b"[", EventKind.HEAD)
        items = list(interleave([self._candidate_events(candidate) for candidate in self._candidates]))
        produced = 0
        for position, (candidate, kind, tokens) in enumerate(items):
            produced += tokens
            last = position == len(items) - 1
            usage = self._usage if last else self._running_usage(produced)
            yield StreamEvent(self._frame(self._response([candidate], usage), last), kind, tokens)

    def _running_usage(self, produced: int) -> dict[str, Any]:
        thoughts = self._thoughts * len(self._candidates)
        return _without_zeros({"promptTokenCount": self._prompt, "candidatesTokenCount": produced,
                               "totalTokenCount": self._prompt + produced + thoughts, "thoughtsTokenCount": thoughts,
                               "promptTokensDetails": self._usage.get("promptTokensDetails")})

    def malformed_event(self) -> bytes:
        data = b'{"candidates": [{"content": {"parts": [{"text": "'
        return b"data: " + data + b"\r\n\r\n" if self._parsed.sse else data

    def error_event(self) -> bytes:
        return b"data: " + STREAM_ERROR + b"\r\n\r\n" if self._parsed.sse else STREAM_ERROR + b"]"


def _parts(candidate: Candidate) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if candidate.thoughts:
        parts.append({"text": "".join(candidate.thoughts), "thought": True})
    answer: list[dict[str, Any]] = [{"functionCall": call} for call in candidate.calls]
    if not candidate.calls and candidate.pieces:
        answer.append({"text": "".join(candidate.pieces)})
    if answer and candidate.signature:
        answer[0]["thoughtSignature"] = candidate.signature
    return parts + answer


def _logprobs(entries: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = [{"token": e["token"], "logProbability": e["logprob"]} for e in entries]
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if any(e["top_logprobs"] for e in entries):
        result["topCandidates"] = [{"candidates": [{"token": t["token"], "logProbability": t["logprob"]}
                                                   for t in e["top_logprobs"]]} for e in entries]
    average = sum(e["logprob"] for e in entries) / len(entries) if entries else 0.0
    return {"avgLogprobs": average, "logprobsResult": result}


def _modalities(text: int, media: int) -> list[dict[str, Any]]:
    details = [{"modality": "TEXT", "tokenCount": text}]
    if media:
        details.append({"modality": "IMAGE", "tokenCount": media})
    return details


def _without_zeros(usage: dict[str, Any]) -> dict[str, Any]:
    """proto3 JSON leaves out fields at their default: zero counts and empty lists do not appear."""
    return {k: v for k, v in usage.items() if v}
