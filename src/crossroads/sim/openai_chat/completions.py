"""OpenAI's legacy Completions API (`POST /v1/completions`), as OpenAI-compatible servers (vLLM, llama.cpp,
Ollama, Together, DeepInfra, Fireworks...) still serve it.

A prompt is a string, an array of strings, an array of token ids or an array of those; each prompt gets `n`
choices (indexes `prompt * n + i`), drawn from `best_of` candidates when that is larger (the extra ones are
billed, as OpenAI bills them). The text is the chat format's deterministic prose for the prompt taken as one
user message; `echo` puts the prompt in front of it, `suffix` is accepted. `max_tokens` defaults to 16, as
OpenAI's does. `logprobs: <k>` (0-5) gives the legacy object: `tokens`, `token_logprobs`, `top_logprobs` (a
token → logprob map per position) and `text_offset`. Prompt tokens are the tokenizer count of each prompt's
text, with no chat template (a token id counts as one token). A stream sends one `text_completion` chunk per
piece of text, a finish chunk per choice, the usage chunk when `stream_options.include_usage` asks, then
`data: [DONE]`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from .. import reply
from ..behaviour import Behaviour
from ..wire import EventKind, StreamEvent, interleave
from . import OpenAIChat
from .errors import STREAM_ERROR, invalid, wrong_type
from .plan import Choice, plan_choices
from .validate import check_request

__all__ = ["OPENAI_COMPLETIONS", "OpenAICompletions"]

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_DONE = b"data: [DONE]\n\n"
_DEFAULT_MAX_TOKENS = 16
_MAX_LOGPROBS = 5
_MAX_BEST_OF = 20
#: The chat fields a legacy request shares, checked by the chat validator.
_SHARED = ("model", "stream", "stream_options", "temperature", "top_p", "presence_penalty", "frequency_penalty",
           "seed", "stop", "user", "logit_bias")


class _Prompt:
    __slots__ = ("choices", "text", "tokens")

    def __init__(self, text: str, tokens: int, choices: list[Choice]) -> None:
        self.text, self.tokens, self.choices = text, tokens, choices


class CompletionsExchange:
    __slots__ = ("_completion_tokens", "_created", "_echo", "_id", "_include_usage", "_logprobs", "_model",
                 "_n", "_prompts", "_step", "_stream", "_usage")

    def __init__(self, body: dict[str, Any], model: str, behaviour: Behaviour, serial: int) -> None:
        prompts = _prompts(body.get("prompt"))
        echo = _flag(body, "echo")
        if body.get("suffix") is not None and not isinstance(body["suffix"], str):
            raise wrong_type("suffix", "a string", body["suffix"])
        n = _integer(body, "n", 1, 128) or 1
        best_of = _integer(body, "best_of", 1, _MAX_BEST_OF) or n
        if best_of < n:
            raise invalid("best_of must be greater than or equal to n.", "best_of", None)
        logprobs = _integer(body, "logprobs", 0, _MAX_LOGPROBS)
        max_tokens = _integer(body, "max_tokens", 0)
        chat = {k: body[k] for k in _SHARED if body.get(k) is not None}
        chat.update(n=best_of, max_tokens=max_tokens or _DEFAULT_MAX_TOKENS)
        if logprobs is not None:
            chat.update(logprobs=True, top_logprobs=logprobs)
        self._prompts: list[_Prompt] = []
        for text, tokens in prompts:
            params = check_request({**chat, "messages": [{"role": "user", "content": text}]}, model)
            choices, _ = plan_choices(params, behaviour, reply.seed_of(text.encode()))
            self._prompts.append(_Prompt(text, tokens, choices))
        params = check_request({**chat, "messages": [{"role": "user", "content": "."}]}, model)
        self._stream, self._include_usage, self._model = params.stream, params.include_usage, params.model
        self._n, self._echo, self._logprobs, self._step = n, echo, logprobs, behaviour.chunk_tokens
        prompt_tokens = sum(p.tokens for p in self._prompts)
        self._completion_tokens = sum(c.tokens for p in self._prompts for c in p.choices)
        self._usage = {"prompt_tokens": prompt_tokens, "completion_tokens": self._completion_tokens,
                       "total_tokens": prompt_tokens + self._completion_tokens}
        unique = reply.mix(reply.seed_of(model.encode()), serial, time.time_ns())
        self._id = "cmpl-" + reply.alnum_id(unique, 29)
        self._created = int(time.time())

    @property
    def stream(self) -> bool:
        return self._stream

    @property
    def generated_tokens(self) -> int:
        return self._completion_tokens

    @property
    def reasoning_tokens(self) -> int:
        return 0

    def headers(self) -> dict[str, str]:
        return {"Content-Type": _SSE if self._stream else _JSON, "openai-version": "2020-10-01"}

    def _returned(self) -> Iterator[tuple[int, _Prompt, Choice]]:
        """The choices the client gets: the first `n` of each prompt's candidates, numbered across prompts."""
        for p, prompt in enumerate(self._prompts):
            for i, choice in enumerate(prompt.choices[: self._n]):
                yield p * self._n + i, prompt, choice

    def _legacy_logprobs(self, entries: list[dict[str, Any]] | None, offset: int) -> dict[str, Any] | None:
        if self._logprobs is None or entries is None:
            return None
        offsets = []
        for entry in entries:
            offsets.append(offset)
            offset += len(entry["token"])
        return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
                "top_logprobs": [{t["token"]: t["logprob"] for t in e.get("top_logprobs", ())} for e in entries],
                "text_offset": offsets}

    def body(self) -> bytes:
        choices = []
        for index, prompt, choice in self._returned():
            head = prompt.text if self._echo else ""
            choices.append({"text": head + "".join(choice.pieces), "index": index,
                            "logprobs": self._legacy_logprobs(choice.logprobs, len(head)),
                            "finish_reason": choice.finish_reason})
        return orjson.dumps({"id": self._id, "object": "text_completion", "created": self._created,
                             "model": self._model, "choices": choices, "usage": self._usage})

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {"id": self._id, "object": "text_completion", "created": self._created,
                                 "model": self._model, "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _choice_events(self, index: int, prompt: _Prompt, choice: Choice) -> Iterator[StreamEvent]:
        offset = 0
        if self._echo:
            yield StreamEvent(self._chunk([_piece(index, prompt.text, None)]), EventKind.HEAD)
            offset = len(prompt.text)
        for at in range(0, len(choice.pieces), self._step):
            text = "".join(choice.pieces[at : at + self._step])
            entries = choice.logprobs[at : at + self._step] if choice.logprobs is not None else None
            yield StreamEvent(self._chunk([_piece(index, text, self._legacy_logprobs(entries, offset))]),
                              EventKind.CONTENT, reply.count_tokens(text))
            offset += len(text)
        yield StreamEvent(self._chunk([_piece(index, "", None, choice.finish_reason)]), EventKind.TAIL)

    def events(self) -> Iterator[StreamEvent]:
        yield from interleave([self._choice_events(*returned) for returned in self._returned()])
        if self._include_usage:
            yield StreamEvent(self._chunk([], self._usage), EventKind.TAIL)
        yield StreamEvent(_DONE, EventKind.TAIL)

    def malformed_event(self) -> bytes:
        return b'data: {"id":"' + self._id.encode() + b'","object":"text_completion","choices":[{"text":\n\n'

    def error_event(self) -> bytes:
        return b"data: " + STREAM_ERROR + b"\n\n"


class OpenAICompletions(OpenAIChat):
    """`WireFormat` for OpenAI's legacy Completions API: the chat format's credentials and errors."""

    name = "openai-completions"

    def prepare(self, request: web.Request, body: Any, model: str | None,  # type: ignore[override]
                behaviour: Behaviour) -> CompletionsExchange:
        if not isinstance(body, dict):
            raise wrong_type("body", "an object", body)
        if not model:
            raise invalid("you must provide a model parameter", "model", None)
        self._serial += 1
        return CompletionsExchange(body, model, behaviour, self._serial)


OPENAI_COMPLETIONS = OpenAICompletions()


def _piece(index: int, text: str, logprobs: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}


def _prompts(value: Any) -> list[tuple[str, int]]:
    """Each prompt's text and token count; token ids are shown as `<id>` and count one token each."""
    if isinstance(value, str):
        return [(value, reply.count_tokens(value))]
    if isinstance(value, list) and value:
        if all(_is_token(t) for t in value):
            return [_token_prompt(value)]
        if all(isinstance(p, str) or (isinstance(p, list) and p and all(_is_token(t) for t in p)) for p in value):
            return [(p, reply.count_tokens(p)) if isinstance(p, str) else _token_prompt(p) for p in value]
    if value is None:
        raise invalid("you must provide a prompt parameter", "prompt", None)
    raise invalid("Invalid prompt: a string, an array of strings, an array of tokens or an array of token "
                  "arrays is expected.", "prompt", None)


def _token_prompt(ids: list[int]) -> tuple[str, int]:
    return "".join(f"<{t}>" for t in ids), len(ids)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise wrong_type(name, "a boolean", value)
    return value


def _integer(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise wrong_type(name, "an integer", value)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"Invalid value for '{name}': must be {bound}.", name, "invalid_value")
    return value
