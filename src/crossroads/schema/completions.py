"""OpenAI's legacy Completions request (`POST /completions`): a `prompt` in place of `messages`.

The body is checked once and typed as a `ChatRequest` whose one user message is the prompt, so the request
takes the chat path — routing, fallbacks, limits, cost, ledger — to any model. The body also travels in
`ChatRequest.native` (`COMPLETIONS_API`): an endpoint whose provider serves the legacy API itself gets the
prompt as written, continued without a chat template. What only that API does (echo the prompt, a suffix,
`best_of` above `n`, several prompts, token ids) is named in `Native.needs`; such a request goes only to
endpoints that serve the API natively, and is refused when its model has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from msgspec import structs

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.request import ChatRequest, Native

#: `Native.wire_format` of a legacy Completions body (an API of the OpenAI format, not a format of its own).
COMPLETIONS_API: Final = "openai_completions"
#: Fields of the request that steer the gateway and are not sent upstream in the native body.
_GATEWAY_ONLY: Final = frozenset({"models", "provider", "route", "plugins", "transforms", "usage", "session_id",
                                  "trace", "debug", "preset", "reasoning", "reasoning_effort",
                                  "include_reasoning", "stream_options"})
#: OpenAI's limits: `best_of` up to 20, `logprobs` up to 5.
_MAX_BEST_OF: Final = 20
_MAX_LOGPROBS: Final = 5

_JSON_TYPES: Final[Mapping[type, str]] = {bool: "a boolean", int: "an integer", str: "a string"}

Prompt = str | list[int]


def parse_completions_request(body: Any, default_model: str, forwarded: Mapping[str, str]) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    if "messages" in body:
        raise InvalidParameter("messages", "is not a field of /completions; send `prompt` (or use "
                                           "/chat/completions)")
    prompts = _prompts(body.get("prompt"))
    chat = {k: v for k, v in body.items() if k not in ("echo", "suffix", "best_of")}
    needs: list[str] = []
    if len(prompts) > 1 or not isinstance(prompts[0], str):
        needs.append("prompt")
    echo = _typed(body, "echo", bool)
    if echo:
        needs.append("echo")
    suffix = _typed(body, "suffix", str)
    if suffix:
        needs.append("suffix")
    n = body.get("n") if body.get("n") is not None else 1
    best_of = _typed(body, "best_of", int)
    if best_of is not None:
        if not 1 <= best_of <= _MAX_BEST_OF:
            raise InvalidParameter("best_of", f"must be between 1 and {_MAX_BEST_OF}")
        if best_of != n:
            needs.append("best_of")
    # The chat path reads one text: every prompt, each of token ids counted as that many characters (no
    # tokenizer makes fewer characters than tokens), so reservations and context checks stay upper bounds.
    chat["prompt"] = "\n".join(p if isinstance(p, str) else "x" * len(p) for p in prompts)
    if len(prompts) > 1 and isinstance(n, int) and not isinstance(n, bool):
        chat["n"] = n * len(prompts)  # `n` choices for each prompt: the worst case reserves for all of them
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        if not isinstance(logprobs, int) or not 0 <= logprobs <= _MAX_LOGPROBS:
            raise InvalidParameter("logprobs", f"expected an integer between 0 and {_MAX_LOGPROBS}")
        chat["logprobs"] = True
        chat["top_logprobs"] = logprobs
    request = parse_chat_request(chat, default_model, forwarded)
    native = {k: v for k, v in body.items() if k not in _GATEWAY_ONLY and v is not None}
    return structs.replace(request, native=Native(wire_format=COMPLETIONS_API, body=native, needs=tuple(needs)))


def _typed(body: Mapping[str, Any], name: str, kind: type) -> Any:
    """A legacy field of the given JSON type, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidParameter(name, f"expected {_JSON_TYPES[kind]}")
    return value


def _prompts(value: Any) -> list[Prompt]:
    """The legacy `prompt`: a string, an array of strings, an array of token ids, or an array of those."""
    if value is None:
        raise InvalidParameter("prompt", "is required")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(_is_token(t) for t in value):
            return [value]
        if all(isinstance(p, str) or (isinstance(p, list) and p and all(_is_token(t) for t in p)) for p in value):
            return list(value)
    raise InvalidParameter("prompt", "expected a string, an array of strings, an array of token ids, or an "
                                     "array of token-id arrays")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


__all__ = ["COMPLETIONS_API", "parse_completions_request"]
