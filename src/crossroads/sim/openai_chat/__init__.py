"""The OpenAI Chat Completions wire format (`POST /v1/chat/completions`).

Modules: `validate` (request checks), `plan` (what the reply says), `render` (body and stream),
`errors` (OpenAI's error answers).

Validates requests the way the OpenAI API does (same messages, `param` and `code` in the error body),
and renders non-stream responses and SSE streams field for field like OpenAI: `chat.completion` objects,
`chat.completion.chunk` events (role chunk, content or tool-call deltas, finish chunk, optional usage chunk
with `"choices": []`, then `data: [DONE]`), logprobs, tool calls and structured output.

What the reply contains, in order of precedence:
  * tool calls, when `tools` are given, `tool_choice` is not "none", the last message is not a `tool`
    message, and either `tool_choice` is "required" / names a function, or the last user message contains
    a tool's name (case-insensitive). With `parallel_tool_calls` (default true) every tool named in the
    user message is called; arguments are generated from the tool's `parameters` schema;
  * JSON, for `response_format` `json_object` (`{"reply": <text>}`) or `json_schema` (an instance of the
    schema);
  * a quote of the trailing `tool` messages' content ("Tool result: ..."), after a tool round trip;
  * otherwise deterministic prose of `tokens` tokens (default 8-40, from the conversation hash); a search
    model (`-search-` in its name) ends it with markdown links to two sources, each the span of a
    `url_citation` in the message's `annotations` (a stream sends them in a delta before the finish).
    `web_search_options` for any other model is a 400.
Choice i of `n` uses its own seed, so choices differ. `max_completion_tokens` / `max_tokens` cap the
output (reasoning tokens included) and end it with `finish_reason: "length"`; a `stop` sequence found in
the text cuts it and ends it with "stop".

Reasoning: a request with `reasoning_effort` (other than "none") reasons for `reasoning=` tokens (default
8-40, from the conversation hash) and gets the reasoning text back the way DeepSeek and vLLM return it,
OpenAI itself keeping it hidden: `reasoning_content` on the message, and stream deltas of
`reasoning_content` before the first content or tool-call delta. The `reasoning=` directive alone reports
reasoning tokens without text, as OpenAI's reasoning models do.

Usage: prompt tokens are the tokenizer count of every message's text (string content and text parts) plus
3 per message, plus 85 per image part; completion tokens are the output's tokens (tool-call arguments for
tool calls) plus reasoning tokens, summed over choices.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..behaviour import Behaviour
from ..checks import bearer_token, model_in_body
from ..wire import SimError
from .errors import INVALID_JSON, MISSING_KEY, error_body, invalid, status_error
from .plan import count_prompt_tokens
from .render import ChatExchange
from .validate import check_request

__all__ = ["OPENAI_CHAT", "ChatExchange", "OpenAIChat", "count_prompt_tokens"]


class OpenAIChat:
    """`WireFormat` for OpenAI Chat Completions."""

    name = "openai-chat"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        if not bearer_token(request):
            raise SimError(401, error_body(MISSING_KEY, "invalid_request_error", None, None))

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return model_in_body(body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        type_ = "invalid_request_error" if status < 500 else "server_error"
        return SimError(status, error_body(message, type_, param, code))

    def invalid_json(self) -> SimError:
        return invalid(INVALID_JSON, None, None)

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> ChatExchange:
        params = check_request(body, model)
        self._serial += 1
        return ChatExchange(params, behaviour, self._serial)


OPENAI_CHAT = OpenAIChat()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
