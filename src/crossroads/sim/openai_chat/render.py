"""Chat Completions replies on the wire, field for field like OpenAI: the `chat.completion` body, and the SSE
stream of `chat.completion.chunk` events (role chunk, content or tool-call deltas, finish chunk, optional usage
chunk with `"choices": []`, then `data: [DONE]`); reasoning shown with `reasoning_effort` goes in
`reasoning_content`, on the message and in deltas ahead of the answer, as DeepSeek and vLLM send it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..wire import EventKind, StreamEvent, interleave
from .errors import STREAM_ERROR
from .plan import Choice, count_prompt_tokens, plan_choices
from .validate import Params

__all__ = ["ChatExchange"]

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_DONE = b"data: [DONE]\n\n"
_PAD = reply.alnum_id(0x0BF5, 64)


class ChatExchange:
    """One planned Chat Completions reply: the non-stream body and the SSE events."""

    __slots__ = (
        "_choices",
        "_chunk_tokens",
        "_completion_tokens",
        "_created",
        "_fingerprint",
        "_id",
        "_logprobs",
        "_model",
        "_params",
        "_reasoning",
        "_request_id",
        "_started",
        "_usage",
    )

    def __init__(self, params: Params, behaviour: Behaviour, serial: int) -> None:
        self._started = time.monotonic()
        self._params = params
        self._model = params.model
        seed = reply.seed_of(params.messages)
        prompt_tokens = count_prompt_tokens(params.messages)
        self._choices, reasoning = plan_choices(params, behaviour, seed)
        self._reasoning = reasoning
        completion_tokens = sum(choice.tokens for choice in self._choices) + reasoning * params.n
        self._completion_tokens = completion_tokens
        self._usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": min(behaviour.cached, prompt_tokens),
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning * params.n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        self._chunk_tokens = behaviour.chunk_tokens
        self._logprobs = params.logprobs
        unique = reply.mix(seed, serial, time.time_ns())
        self._id = "chatcmpl-" + reply.alnum_id(unique, 29)
        self._request_id = "req_" + f"{reply.mix(unique, 1):016x}{reply.mix(unique, 2):016x}"
        self._created = int(time.time())
        self._fingerprint = f"fp_sim{reply.seed_of(params.model.encode()) & 0xFFFFFFF:07x}"

    @property
    def stream(self) -> bool:
        return self._params.stream

    @property
    def generated_tokens(self) -> int:
        return self._completion_tokens

    @property
    def reasoning_tokens(self) -> int:
        return self._reasoning

    @property
    def usage(self) -> dict[str, Any]:
        return self._usage

    def headers(self) -> dict[str, str]:
        elapsed = int((time.monotonic() - self._started) * 1000)
        return {
            "Content-Type": _SSE if self._params.stream else _JSON,
            "x-request-id": self._request_id,
            "openai-version": "2020-10-01",
            "openai-organization": "org-sim",
            "openai-processing-ms": str(elapsed),
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "2ms",
        }

    # non-stream

    def body(self) -> bytes:
        choices = []
        for choice in self._choices:
            message: dict[str, Any] = {"role": "assistant", "content": choice.content}
            if choice.reasoning:
                message["reasoning_content"] = "".join(choice.reasoning)
            if choice.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in choice.tool_calls
                ]
            message["refusal"] = None
            message["annotations"] = choice.annotations
            logprobs = {"content": choice.logprobs, "refusal": None} if choice.logprobs is not None else None
            choices.append(
                {
                    "index": choice.index,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": choice.finish_reason,
                }
            )
        return orjson.dumps(
            {
                "id": self._id,
                "object": "chat.completion",
                "created": self._created,
                "model": self._model,
                "choices": choices,
                "usage": self._usage,
                "service_tier": "default",
                "system_fingerprint": self._fingerprint,
            }
        )

    # stream

    def _chunk(self, choices: list[dict[str, Any]], serial: int, usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "service_tier": "default",
            "system_fingerprint": self._fingerprint,
            "choices": choices,
        }
        if self._params.include_usage:
            chunk["usage"] = usage
        if self._params.include_obfuscation:
            start = serial % 48
            chunk["obfuscation"] = _PAD[start : start + 2 + serial % 14]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _choice_events(self, choice: Choice) -> Iterator[tuple[dict[str, Any], EventKind, int]]:
        index, step = choice.index, self._chunk_tokens
        # Reasoning first; the server already waited for its tokens before the first chunk, so none to pace.
        for at in range(0, len(choice.reasoning), step):
            thought = {"reasoning_content": "".join(choice.reasoning[at : at + step])}
            yield _delta(index, {"role": "assistant", **thought} if at == 0 else thought), EventKind.CONTENT, 0
        if choice.tool_calls:
            for j, call in enumerate(choice.tool_calls):
                head = {
                    "index": j,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                if j == 0:
                    delta = {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
                    yield _delta(index, delta), EventKind.HEAD, 0
                else:
                    yield _delta(index, {"tool_calls": [head]}), EventKind.CONTENT, 0
                for at in range(0, len(call.pieces), step):
                    fragment = "".join(call.pieces[at : at + step])
                    delta = {"tool_calls": [{"index": j, "function": {"arguments": fragment}}]}
                    yield _delta(index, delta), EventKind.CONTENT, reply.count_tokens(fragment)
        else:
            yield _delta(index, {"role": "assistant", "content": "", "refusal": None}), EventKind.HEAD, 0
            for at in range(0, len(choice.pieces), step):
                group = choice.pieces[at : at + step]
                text = "".join(group)
                logprobs = None
                if choice.logprobs is not None:
                    logprobs = {"content": choice.logprobs[at : at + step], "refusal": None}
                yield _delta(index, {"content": text}, logprobs), EventKind.CONTENT, reply.count_tokens(text)
            if choice.annotations:
                yield _delta(index, {"annotations": choice.annotations}), EventKind.CONTENT, 0
        yield _delta(index, {}, finish_reason=choice.finish_reason), EventKind.TAIL, 0

    def events(self) -> Iterator[StreamEvent]:
        serial = 0
        for choice, kind, tokens in interleave([self._choice_events(choice) for choice in self._choices]):
            yield StreamEvent(self._chunk([choice], serial), kind, tokens)
            serial += 1
        if self._params.include_usage:
            yield StreamEvent(self._chunk([], serial, self._usage), EventKind.TAIL)
        yield StreamEvent(_DONE, EventKind.TAIL)

    def malformed_event(self) -> bytes:
        return b'data: {"id":"' + self._id.encode() + b'","object":"chat.completion.chunk","choices":[{"delta":{\n\n'

    def error_event(self) -> bytes:
        return b"data: " + STREAM_ERROR + b"\n\n"


def _delta(
    index: int,
    delta: dict[str, Any],
    logprobs: dict[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
