"""The Anthropic Messages wire format (`POST /v1/messages`).

Modules: `validate` (request checks), `plan` (what the reply says), `render` (body and stream),
`errors` (Anthropic's error answers), `thinking` (thinking-block signatures).

Follows Anthropic's API reference ("Messages" → "Create a Message", "Streaming Messages", "Errors") and its
guides ("Tool use", "Extended thinking", "Structured outputs", "Prompt caching") closely enough that the
official `anthropic` SDK parses every reply, stream and error, and strictly enough to catch a client that
sends what the real API refuses. Requests need an API key, in `x-api-key` or (as recent SDKs send it) as
`Authorization: Bearer` (401 `authentication_error` otherwise), and an `anthropic-version` header.
Refused with Anthropic's error shape (`{"type": "error", "error": {"type", "message"}, "request_id"}`) and
status 400: unknown top-level fields, a missing `model` / `max_tokens` / `messages`, a
`system` role inside `messages`, a first turn that is not `user`, two turns of one role in a row, empty
content, unknown content block types, text before a `tool_result` in its turn, a `tool_result` answering
no `tool_use` of the previous turn (or a `tool_use` left unanswered), a thinking block whose `signature`
this simulator did not issue, `temperature` / `top_p` outside 0..1, a thinking budget under 1024 or not
below `max_tokens`, sampling changes or a forced tool while thinking, and a thinking-enabled tool loop
whose assistant turn does not start with a thinking block.

What the reply contains, in order of precedence:
  * with `thinking` enabled, first a thinking block: deterministic text (empty under `display: "omitted"`)
    and a signature, of `reasoning=` tokens (default 8-40) capped by the budget;
  * `tool_use` blocks, when `tools` are given, `tool_choice` is not "none", and either `tool_choice` forces
    a tool ("any": the tools named in the last user text, else the first; "tool": that one) or the last
    user message is not a tool-result turn and its text names a tool (case-insensitive). Several with
    parallel tool use (the default); inputs are generated from each tool's `input_schema`;
  * for `output_config.format` (or the beta `output_format`), text that is an instance of the schema;
  * after a tool round trip, a quote of the results ("Tool result: ...");
  * otherwise deterministic prose of `tokens=` tokens (default 8-40, from the conversation hash); with the
    `web_search` server tool, preceded by a `server_tool_use` block (the last user text as the query) and
    its `web_search_tool_result` (five of `sim/search.py`'s pages, within `allowed_domains` / outside
    `blocked_domains`), the prose citing the first two (`citations`), and
    `usage.server_tool_use.web_search_requests` counting the search.
`max_tokens` caps the output, thinking included (`stop_reason: "max_tokens"`); a stop sequence found in the
text cuts it (`"stop_sequence"`, with `stop_sequence` set).

Usage: input tokens are the tokenizer count of the tool definitions, the system text and every block's
text (tool inputs and results included) plus 3 per message and 85 per image or document. `cached=n`
reports n of them as `cache_read_input_tokens`; when a `cache_control` marker is present, the tokens up to
the last marked block (all of them for a top-level marker) not already read are reported as
`cache_creation_input_tokens`, split by the marker's TTL in `cache_creation`. `input_tokens` is the rest.
Output tokens are the text's or tool inputs' tokens plus the thinking tokens (also reported as
`output_tokens_details.thinking_tokens`). The simulator caches prompts of any length.

Streams are `event: <type>\\ndata: <json>\\n\\n` events: `message_start`, `ping`, per block
`content_block_start` / `content_block_delta` / `content_block_stop`, `message_delta`, `message_stop`; an
`error_after` directive ends a stream with an `error` event carrying an `overloaded_error`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..behaviour import Behaviour
from ..checks import bearer_token, model_in_body
from ..wire import SimError
from .errors import answer, error_type, invalid, status_error
from .plan import count_prompt_tokens
from .render import MessagesExchange
from .thinking import sign_thinking
from .validate import check_request

__all__ = ["ANTHROPIC_MESSAGES", "AnthropicMessages", "MessagesExchange", "count_messages_tokens",
           "count_prompt_tokens", "sign_thinking"]


class AnthropicMessages:
    """`WireFormat` for Anthropic Messages."""

    name = "anthropic-messages"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        """An API key in `x-api-key`, or (as recent SDKs send it) `Authorization: Bearer`."""
        if not request.headers.get("x-api-key", "").strip() and not bearer_token(request):
            raise answer(401, "authentication_error", "x-api-key header is required")

    def model_of(self, request: web.Request, body: Any) -> str | None:
        return model_in_body(body)

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return answer(status, error_type(status), message)

    def invalid_json(self) -> SimError:
        return invalid("There was an error parsing the body of your request. Please make sure it is valid JSON.")

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> MessagesExchange:
        if not request.headers.get("anthropic-version"):
            raise invalid("anthropic-version: header is required")
        params = check_request(request, body, model)
        self._serial += 1
        return MessagesExchange(params, behaviour, self._serial)


def count_messages_tokens(request: web.Request, body: Any) -> int:
    """The input tokens of a `count_tokens` body (a Messages request without `max_tokens`), once checked as a
    Messages request would be."""
    if isinstance(body, dict):
        # Checked as a request with room for any thinking budget; the count itself takes no output cap.
        check_request(request, {**body, "max_tokens": 1 << 20}, model_in_body(body))
        return count_prompt_tokens(body)
    check_request(request, body, None)  # raises: the body is not an object
    return 0


ANTHROPIC_MESSAGES = AnthropicMessages()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
