"""The Anthropic Messages wire format (`POST /v1/messages`).

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
  * otherwise deterministic prose of `tokens=` tokens (default 8-40, from the conversation hash).
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

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from . import reply
from .behaviour import Behaviour
from .wire import EventKind, SimError, StreamEvent

__all__ = ["ANTHROPIC_MESSAGES", "AnthropicMessages", "MessagesExchange", "count_prompt_tokens", "sign_thinking"]

API_VERSION: Final = "2023-06-01"
STRUCTURED_OUTPUTS_BETA: Final = "structured-outputs-2025-11-13"
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_ATTACHMENT: Final = 85
MIN_THINKING_BUDGET: Final = 1024

USER_BLOCKS: Final = ("text", "image", "document", "tool_result")
ASSISTANT_BLOCKS: Final = ("text", "tool_use", "thinking", "redacted_thinking")
IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_CHOICES: Final = ("auto", "any", "tool", "none")
#: Top-level request fields the API knows (Messages reference); anything else is refused.
FIELDS: Final = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "output_config", "service_tier", "cache_control", "container",
    "inference_geo", "diagnostics", "speed", "user_profile_id", "workspace_id", "context_management",
    "mcp_servers",
})

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_SIGNING_KEY = b"crossroads-sim/thinking-signature"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


# ---------------------------------------------------------------------------------------------- errors


def _request_id(seed: int) -> str:
    return "req_011C" + reply.alnum_id(seed, 20)


def _error_body(type_: str, message: str) -> bytes:
    request_id = _request_id(reply.seed_of(message.encode()))
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id})


def _error(status: int, type_: str, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    body = _error_body(type_, message)
    return SimError(status, body, {"request-id": orjson.loads(body)["request_id"], **(headers or {})})


def _invalid(message: str) -> SimError:
    return _error(400, "invalid_request_error", message)


def _required(path: str) -> SimError:
    return _invalid(f"{path}: Field required")


def _expected(path: str, what: str) -> SimError:
    return _invalid(f"{path}: Input should be {what}")


def _extra(path: str) -> SimError:
    return _invalid(f"{path}: Extra inputs are not permitted")


#: Per status: (error type, message). `{model}` is filled in.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
                           "Billing to upgrade or purchase credits."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization of 50 requests "
                              "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
                              "You can see the response headers for current usage. Please reduce the prompt "
                              "length or the maximum tokens requested, or try again later."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

_STREAM_ERROR: Final = orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def _seconds(value: float) -> str:
    return f"{value:g}"


# -------------------------------------------------------------------------------------------- thinking


def sign_thinking(seed: int) -> str:
    """A signature for a thinking block: a nonce and its keyed hash, so `verify_signature` can tell the
    simulator's own signatures from altered or invented ones."""
    nonce = reply.mix(seed, 0x5164).to_bytes(8, "little") + reply.mix(seed, 0x5165).to_bytes(8, "little")
    mac = hmac.new(_SIGNING_KEY, nonce, hashlib.sha256).digest()
    return base64.b64encode(b"\x12\x20" + nonce + mac).decode()


def verify_signature(signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 50 or raw[:2] != b"\x12\x20":
        return False
    return hmac.compare_digest(raw[18:], hmac.new(_SIGNING_KEY, raw[2:18], hashlib.sha256).digest())


# ------------------------------------------------------------------------------------------ validation


@dataclass(slots=True)
class _Params:
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    system: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    stops: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: dict[str, Any] | None = None
    thinking_budget: int | None = None
    thinking_display: str = "summarized"
    output_schema: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(body: Mapping[str, Any], name: str, low: float, high: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if name == "top_k":
        if not _is_integer(value):
            raise _expected(name, "a valid integer")
    elif not _is_number(value):
        raise _expected(name, "a valid number")
    if value < low:
        raise _expected(name, f"greater than or equal to {low:g}")
    if high is not None and value > high:
        raise _expected(name, f"less than or equal to {high:g}")


def _check_cache_control(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _expected(path, "a valid dictionary")
    if value.get("type") != "ephemeral":
        raise _invalid(f"{path}.type: Input should be 'ephemeral'")
    ttl = value.get("ttl")
    if ttl is not None and ttl not in ("5m", "1h"):
        raise _invalid(f"{path}.ttl: Input should be '5m' or '1h'")
    return value


def _check_text(block: Mapping[str, Any], path: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise _required(f"{path}.text") if text is None else _expected(f"{path}.text", "a valid string")
    if not text:
        raise _invalid("messages: text content blocks must be non-empty")


def _check_source(block: Mapping[str, Any], path: str, kinds: Mapping[str, tuple[str, ...]]) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _required(f"{path}.source")
    kind = str(source.get("type"))
    if kind == "url":
        if not isinstance(source.get("url"), str):
            raise _required(f"{path}.source.url")
        return
    if kind not in kinds:
        allowed = ", ".join(f"'{k}'" for k in (*kinds, "url"))
        raise _invalid(f"{path}.source: Input tag '{kind}' found using 'type' does not match any of the "
                       f"expected tags: {allowed}")
    media_type = source.get("media_type")
    if media_type not in kinds[kind]:
        allowed = ", ".join(f"'{m}'" for m in kinds[kind])
        raise _invalid(f"{path}.source.{kind}.media_type: Input should be {allowed}")
    data = source.get("data")
    if not isinstance(data, str):
        raise _required(f"{path}.source.{kind}.data")
    if kind == "base64":
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"{path}.source.base64.data: invalid base64 data") from None


_IMAGE_SOURCES: Final = {"base64": IMAGE_TYPES}
_DOCUMENT_SOURCES: Final = {"base64": ("application/pdf",), "text": ("text/plain",)}


def _check_block(block: Any, path: str, role: str) -> None:
    if not isinstance(block, dict):
        raise _expected(path, "a valid dictionary")
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        tags = ", ".join(f"'{t}'" for t in allowed)
        raise _invalid(f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                       f"{tags}")
    if "cache_control" in block and block["cache_control"] is not None:
        _check_cache_control(block["cache_control"], f"{path}.cache_control")
    if kind == "text":
        _check_text(block, f"{path}")
    elif kind == "image":
        _check_source(block, path, _IMAGE_SOURCES)
    elif kind == "document":
        _check_source(block, path, _DOCUMENT_SOURCES)
    elif kind == "tool_use":
        for key in ("id", "name"):
            if not isinstance(block.get(key), str):
                raise _required(f"{path}.{key}")
        if not isinstance(block.get("input"), dict):
            raise _expected(f"{path}.input", "a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise _required(f"{path}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                where = f"{path}.content.{k}"
                if not isinstance(part, dict) or part.get("type") not in ("text", "image", "document"):
                    raise _invalid(f"{where}: Input tag '{(part or {}).get('type')}' found using 'type' does not "
                                   "match any of the expected tags: 'text', 'image', 'document'")
                if part["type"] == "text":
                    _check_text(part, where)
        elif content is not None and not isinstance(content, str):
            raise _expected(f"{path}.content", "a valid string")
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise _required(f"{path}.thinking")
        signature = block.get("signature")
        if not isinstance(signature, str):
            raise _required(f"{path}.signature")
        if not verify_signature(signature):
            raise _invalid(f"{path}: Invalid `signature` in `thinking` block")
    elif kind == "redacted_thinking" and not (isinstance(block.get("data"), str) and block["data"]):
        raise _required(f"{path}.data")


def _check_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages with string content turned into one text block."""
    messages = body.get("messages")
    if messages is None:
        raise _required("messages")
    if not isinstance(messages, list):
        raise _expected("messages", "a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    normalised: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise _expected(path, "a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise _invalid(f'{path}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
                           'parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise _invalid(f"{path}.role: Input should be 'user' or 'assistant'")
        for key in message:
            if key not in ("role", "content"):
                raise _extra(f"{path}.{key}")
        if "content" not in message:
            raise _required(f"{path}.content")
        content = message["content"]
        final_assistant = role == "assistant" and i == len(messages) - 1
        if isinstance(content, str):
            blocks = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = content
            for j, block in enumerate(blocks):
                _check_block(block, f"{path}.content.{j}", role)
        else:
            raise _expected(f"{path}.content", "a valid string")
        if not blocks and not final_assistant:
            raise _invalid(f"{path}: all messages must have non-empty content except for the optional final "
                           "assistant message")
        if i == 0 and role != "user":
            raise _invalid('messages: first message must use the "user" role')
        if normalised and normalised[-1]["role"] == role:
            raise _invalid(f'messages: roles must alternate between "user" and "assistant", but found multiple '
                           f'"{role}" roles in a row')
        normalised.append({"role": role, "content": blocks})
    _check_tool_pairing(normalised)
    return normalised


def _check_tool_pairing(messages: Sequence[Mapping[str, Any]]) -> None:
    for i, message in enumerate(messages):
        if message["role"] != "user":
            continue
        previous = messages[i - 1]["content"] if i else []
        uses = [block["id"] for block in previous if block.get("type") == "tool_use"]
        answered: list[str] = []
        seen_other = False
        for j, block in enumerate(message["content"]):
            if block.get("type") != "tool_result":
                seen_other = True
                continue
            call_id = block["tool_use_id"]
            if call_id not in uses:
                raise _invalid(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                               f"{call_id}. Each `tool_result` block must have a corresponding `tool_use` block in "
                               "the previous message.")
            if seen_other:
                raise _invalid(f"messages.{i}: `tool_result` blocks must come first in the user message, before any "
                               "other content.")
            answered.append(call_id)
        missing = [call_id for call_id in uses if call_id not in answered]
        if missing:
            raise _invalid(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                           f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                           "`tool_result` block in the next message.")
    last = messages[-1]
    if last["role"] == "assistant" and len(messages) > 1:
        pending = [block["id"] for block in last["content"] if block.get("type") == "tool_use"]
        if pending:
            raise _invalid(f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks "
                           f"immediately after: {', '.join(pending)}. Each `tool_use` block must have a "
                           "corresponding `tool_result` block in the next message.")


def _check_system(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    if not isinstance(system, list):
        raise _expected("system", "a valid string")
    for k, block in enumerate(system):
        path = f"system.{k}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"{path}.type: Input should be 'text'")
        _check_text(block, path)
        if block.get("cache_control") is not None:
            _check_cache_control(block["cache_control"], f"{path}.cache_control")
    return system


def _check_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _expected("tools", "a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _expected(path, "a valid dictionary")
        if tool.get("type", "custom") != "custom":
            continue  # server tools (web search, ...) are accepted and never called
        name = tool.get("name")
        if not isinstance(name, str):
            raise _required(f"{path}.custom.name")
        if not _TOOL_NAME.match(name):
            raise _invalid(f"{path}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if name in names:
            raise _invalid("tools: Tool names must be unique.")
        names.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _required(f"{path}.custom.input_schema")
        if schema.get("type") != "object":
            raise _invalid(f"{path}.custom.input_schema.type: Input should be 'object'")
        for key in tool:
            if key not in ("type", "name", "description", "input_schema", "cache_control", "strict"):
                raise _extra(f"{path}.custom.{key}")
        if tool.get("cache_control") is not None:
            _check_cache_control(tool["cache_control"], f"{path}.custom.cache_control")
    return tools


def _check_tool_choice(body: Mapping[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise _expected("tool_choice", "a valid dictionary")
    kind = choice.get("type")
    if kind not in TOOL_CHOICES:
        tags = ", ".join(f"'{t}'" for t in TOOL_CHOICES)
        raise _invalid(f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected "
                       f"tags: {tags}")
    if not tools and kind != "none":
        raise _invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _required("tool_choice.tool.name")
        if name not in {tool.get("name") for tool in tools}:
            raise _invalid(f"tool_choice: Tool '{name}' not found in tools")
    flag = choice.get("disable_parallel_tool_use")
    if flag is not None and (kind == "none" or not isinstance(flag, bool)):
        raise _extra("tool_choice.none.disable_parallel_tool_use") if kind == "none" else \
            _expected(f"tool_choice.{kind}.disable_parallel_tool_use", "a valid boolean")
    return choice


def _check_thinking(body: Mapping[str, Any], max_tokens: int) -> tuple[int | None, str]:
    thinking = body.get("thinking")
    if thinking is None:
        return None, "summarized"
    if not isinstance(thinking, dict):
        raise _expected("thinking", "a valid dictionary")
    kind = thinking.get("type")
    if kind == "disabled":
        return None, "summarized"
    if kind != "enabled":
        raise _invalid(f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                       "'enabled', 'disabled'")
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise _required("thinking.enabled.budget_tokens")
    if not _is_integer(budget):
        raise _expected("thinking.enabled.budget_tokens", "a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise _expected("thinking.enabled.budget_tokens", f"greater than or equal to {MIN_THINKING_BUDGET}")
    if budget >= max_tokens:
        raise _invalid(f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                       f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size")
    display = thinking.get("display") or "summarized"
    if display not in ("summarized", "omitted"):
        raise _invalid("thinking.enabled.display: Input should be 'summarized' or 'omitted'")
    if body.get("temperature") not in (None, 1):
        raise _invalid(f"`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                       f"documentation at {_THINKING_DOCS}#feature-compatibility")
    if body.get("top_k") is not None:
        raise _invalid(f"`top_k` must be unset when thinking is enabled. Please consult our documentation at "
                       f"{_THINKING_DOCS}#feature-compatibility")
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:
        raise _invalid(f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. Please "
                       f"consult our documentation at {_THINKING_DOCS}#feature-compatibility")
    choice = body.get("tool_choice") or {}
    if choice.get("type") in ("any", "tool"):
        raise _invalid("Thinking may not be enabled when tool_choice forces tool use.")
    return budget, display


def _check_thinking_turn(messages: Sequence[Mapping[str, Any]]) -> None:
    """With thinking on, an assistant turn whose tool calls the last user turn answers must start with a
    thinking block ("Extended thinking" → "Preserving thinking blocks")."""
    last = messages[-1]
    if last["role"] != "user" or len(messages) < 2:
        return
    if not any(block.get("type") == "tool_result" for block in last["content"]):
        return
    previous = messages[-2]["content"]
    first = previous[0].get("type") if previous else None
    if first not in ("thinking", "redacted_thinking"):
        raise _invalid(
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block "
            "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
            "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult "
            f"our documentation at {_THINKING_DOCS}")


def _check_output_format(body: Mapping[str, Any], betas: set[str]) -> dict[str, Any] | None:
    formats: list[tuple[str, Any]] = []
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise _expected("output_config", "a valid dictionary")
        for key in config:
            if key not in ("format", "effort"):
                raise _extra(f"output_config.{key}")
        if config.get("format") is not None:
            formats.append(("output_config.format", config["format"]))
    if "output_format" in body:
        if STRUCTURED_OUTPUTS_BETA not in betas:
            raise _extra("output_format")
        formats.append(("output_format", body["output_format"]))
    if not formats:
        return None
    path, fmt = formats[-1]
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _invalid(f"{path}.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise _required(f"{path}.schema")
    return schema


def _validate(request: web.Request, body: Any, model: str | None) -> _Params:
    if not isinstance(body, dict):
        raise _expected("body", "a valid dictionary")
    betas = {beta.strip() for value in request.headers.getall("anthropic-beta", []) for beta in value.split(",")}
    for key in body:
        if key not in FIELDS and not (key == "output_format" and STRUCTURED_OUTPUTS_BETA in betas):
            raise _extra(key)
    if "model" not in body or not model:
        raise _required("model")
    if not isinstance(body["model"], str):
        raise _expected("model", "a valid string")
    if "max_tokens" not in body:
        raise _required("max_tokens")
    max_tokens = body["max_tokens"]
    if not _is_integer(max_tokens):
        raise _expected("max_tokens", "a valid integer")
    if max_tokens < 0:
        raise _expected("max_tokens", "greater than or equal to 0")
    messages = _check_messages(body)
    system = _check_system(body)
    _check_range(body, "temperature", 0, 1)
    _check_range(body, "top_p", 0, 1)
    _check_range(body, "top_k", 0, None)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _expected("stream", "a valid boolean")
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise _expected("stop_sequences", "a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _expected("metadata", "a valid dictionary")
        for key, value in metadata.items():
            if key != "user_id":
                raise _extra(f"metadata.{key}")
            if value is not None and not isinstance(value, str):
                raise _expected("metadata.user_id", "a valid string")
    tools = _check_tools(body)
    tool_choice = _check_tool_choice(body, tools)
    budget, display = _check_thinking(body, max_tokens)
    if budget is not None:
        _check_thinking_turn(messages)
    cache_control = body.get("cache_control")
    if cache_control is not None:
        _check_cache_control(cache_control, "cache_control")
    return _Params(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        system=system,
        stream=stream,
        stops=stops,
        tools=tools,
        tool_choice=tool_choice,
        thinking_budget=budget,
        thinking_display=display,
        output_schema=_check_output_format(body, betas),
        cache_control=cache_control,
    )


# ------------------------------------------------------------------------------------------- content


def _text_of(blocks: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(block["text"] for block in blocks if block.get("type") == "text")


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return _text_of(content)
    return content if isinstance(content, str) else ""


def _block_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return reply.count_tokens(block["text"])
    if kind in ("image", "document"):
        return TOKENS_PER_ATTACHMENT
    if kind == "tool_use":
        return reply.count_tokens(block["name"]) + reply.count_tokens(orjson.dumps(block["input"]).decode())
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(part) for part in content)
        return reply.count_tokens(content) if isinstance(content, str) else 0
    if kind == "thinking":
        return reply.count_tokens(block["thinking"])
    return 0


def _tool_tokens(tool: Mapping[str, Any]) -> int:
    schema = orjson.dumps(tool.get("input_schema")).decode()
    text = " ".join((tool.get("name", ""), tool.get("description", ""), schema))
    return reply.count_tokens(text)


def _layout(params: _Params) -> tuple[int, int, str | None]:
    """(prompt tokens, tokens up to the last `cache_control` marker, that marker's TTL), in the order
    Anthropic builds its cache prefix: tools, system, messages ("Prompt caching")."""
    total = 0
    prefix = 0
    ttl: str | None = None

    def mark(item: Mapping[str, Any]) -> None:
        nonlocal prefix, ttl
        control = item.get("cache_control")
        if isinstance(control, dict):
            prefix, ttl = total, control.get("ttl") or "5m"

    for tool in params.tools:
        total += _tool_tokens(tool)
        mark(tool)
    for block in params.system:
        total += reply.count_tokens(block["text"])
        mark(block)
    for message in params.messages:
        total += TOKENS_PER_MESSAGE
        for block in message["content"]:
            total += _block_tokens(block)
            mark(block)
    if params.cache_control is not None:
        prefix, ttl = total, params.cache_control.get("ttl") or "5m"
    return total, prefix, ttl


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens (cached or not) the simulator reports for a valid request body."""
    params = _Params(model="", messages=[{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]
                                          if isinstance(m["content"], str) else m["content"]}
                                         for m in body["messages"]],
                     max_tokens=0, system=[{"type": "text", "text": body["system"]}]
                     if isinstance(body.get("system"), str) else list(body.get("system") or ()),
                     tools=list(body.get("tools") or ()), cache_control=body.get("cache_control"))
    return _layout(params)[0]


def _tools_to_call(params: _Params) -> list[dict[str, Any]]:
    tools = [tool for tool in params.tools if tool.get("type", "custom") == "custom"]
    choice = params.tool_choice or {"type": "auto"}
    kind = choice["type"]
    if not tools or kind == "none":
        return []
    if kind == "tool":
        return [tool for tool in tools if tool["name"] == choice["name"]][:1]
    last = params.messages[-1]
    answering = last["role"] == "user" and any(block.get("type") == "tool_result" for block in last["content"])
    if answering and kind != "any":
        return []
    said = next((_text_of(m["content"]) for m in reversed(params.messages)
                 if m["role"] == "user" and _text_of(m["content"])), "").lower()
    named = [tool for tool in tools if tool["name"].lower() in said]
    chosen = named or (tools[:1] if kind == "any" else [])
    return chosen[:1] if choice.get("disable_parallel_tool_use") else chosen


def _tool_results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    last = messages[-1]
    if last["role"] != "user":
        return []
    return [_result_text(block) for block in last["content"] if block.get("type") == "tool_result"]


def _first_stop(pieces: Sequence[str], stops: Sequence[str]) -> str | None:
    text = "".join(pieces)
    found = [(text.find(stop), stop) for stop in stops if stop and stop in text]
    return min(found)[1] if found else None


@dataclass(slots=True)
class _Block:
    kind: str
    pieces: list[str] = field(default_factory=list)
    signature: str = ""
    tool_id: str = ""
    name: str = ""
    arguments: str = ""

    def rendered(self) -> dict[str, Any]:
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "".join(self.pieces), "signature": self.signature}
        if self.kind == "tool_use":
            return {"type": "tool_use", "id": self.tool_id, "name": self.name, "input": orjson.loads(self.arguments)}
        return {"type": "text", "text": "".join(self.pieces)}


def _plan(params: _Params, behaviour: Behaviour) -> tuple[list[_Block], int, int, str, str | None]:
    """(blocks, output tokens, thinking tokens, stop reason, stop sequence)."""
    seed = reply.seed_of({"system": params.system, "messages": params.messages})
    blocks: list[_Block] = []
    left = params.max_tokens
    thinking = 0
    if params.thinking_budget is not None:
        think_seed = reply.mix(seed, 0x7417)
        wanted = behaviour.reasoning or reply.default_token_count(think_seed)
        thinking = min(wanted, params.thinking_budget, left)
        pieces = list(reply.text_pieces(think_seed, thinking)) if params.thinking_display == "summarized" else []
        blocks.append(_Block("thinking", pieces, signature=sign_thinking(think_seed)))
        left -= thinking
    calls = _tools_to_call(params)
    if calls:
        stop = "tool_use"
        used = 0
        for j, tool in enumerate(calls):
            call_seed = reply.mix(seed, 1, j + 1)
            arguments = reply.tool_arguments(tool.get("input_schema"), call_seed)
            tokens = reply.count_tokens(arguments)
            if used + tokens > left:
                stop = "max_tokens"
                break
            used += tokens
            tool_id = "toolu_01" + reply.alnum_id(reply.mix(call_seed, 0xCA11), 22)
            blocks.append(_Block("tool_use", reply.split_pieces(arguments), tool_id=tool_id, name=tool["name"],
                                 arguments=arguments))
        return blocks, thinking + used, thinking, stop, None
    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(reply.mix(seed, 1))
    results = _tool_results(params.messages)
    if params.output_schema is not None:
        text = orjson.dumps(reply.json_instance(params.output_schema, reply.mix(seed, 1))).decode()
        pieces = reply.split_pieces(text)
    elif results:
        pieces = reply.split_pieces("Tool result: " + " | ".join(results))
    else:
        pieces = list(reply.text_pieces(reply.mix(seed, 1), count))
    stop_reason = "end_turn"
    if len(pieces) > left:
        pieces, stop_reason = pieces[:left], "max_tokens"
    stop_sequence = _first_stop(pieces, params.stops)
    if stop_sequence is not None:
        pieces, _ = reply.apply_stop(pieces, [stop_sequence])
        stop_reason = "stop_sequence"
    if pieces:
        blocks.append(_Block("text", pieces))
    return blocks, thinking + reply.count_tokens("".join(pieces)), thinking, stop_reason, stop_sequence


# ------------------------------------------------------------------------------------------ exchange


def _event(kind: str, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessagesExchange:
    """One planned Messages reply: the non-stream body and the SSE events."""

    __slots__ = ("_blocks", "_chunk_tokens", "_id", "_output_tokens", "_params", "_request_id", "_stop_reason",
                 "_stop_sequence", "_thinking_tokens", "_usage")

    def __init__(self, params: _Params, behaviour: Behaviour, serial: int) -> None:
        self._params = params
        blocks, output, thinking, stop_reason, stop_sequence = _plan(params, behaviour)
        self._blocks = blocks
        self._output_tokens = output
        self._thinking_tokens = thinking
        self._stop_reason = stop_reason
        self._stop_sequence = stop_sequence
        self._chunk_tokens = behaviour.chunk_tokens
        total, prefix, ttl = _layout(params)
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
        unique = reply.mix(reply.seed_of(params.messages), serial, time.time_ns())
        self._id = "msg_01" + reply.alnum_id(unique, 22)
        self._request_id = _request_id(reply.mix(unique, 1))

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

    def _block_events(self, index: int, block: _Block) -> Iterator[tuple[bytes, EventKind, int]]:
        step = self._chunk_tokens
        if block.kind == "thinking":
            start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        elif block.kind == "tool_use":
            start = {"type": "tool_use", "id": block.tool_id, "name": block.name, "input": {}}
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
        for at in range(0, len(block.pieces), step):
            text = "".join(block.pieces[at : at + step])
            if block.kind == "thinking":
                # Thinking time is paced before the first event (see the server), so these carry no tokens.
                delta: dict[str, Any] = {"type": "thinking_delta", "thinking": text}
                tokens = 0
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
        return b"event: error\ndata: " + _STREAM_ERROR + b"\n\n"


# ------------------------------------------------------------------------------------------- format


class AnthropicMessages:
    """`WireFormat` for Anthropic Messages."""

    name = "anthropic-messages"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        """An API key in `x-api-key`, or (as recent SDKs send it) `Authorization: Bearer`."""
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if not request.headers.get("x-api-key", "").strip() and not (scheme.lower() == "bearer" and token.strip()):
            raise _error(401, "authentication_error", "x-api-key header is required")

    def model_of(self, request: web.Request, body: Any) -> str | None:
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        type_ = _STATUS_ERRORS.get(status, ("invalid_request_error" if status < 500 else "api_error", ""))[0]
        return _error(status, type_, message)

    def invalid_json(self) -> SimError:
        return _invalid("There was an error parsing the body of your request. Please make sure it is valid JSON.")

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        default = ("invalid_request_error" if status < 500 else "api_error", f"Error {status} (simulated).")
        type_, template = _STATUS_ERRORS.get(status, default)
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = _seconds(retry_after)
        if status == 429:
            headers.update({"anthropic-ratelimit-requests-limit": "50",
                            "anthropic-ratelimit-requests-remaining": "0"})
        return _error(status, type_, template.replace("{model}", model), headers)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> MessagesExchange:
        if not request.headers.get("anthropic-version"):
            raise _invalid("anthropic-version: header is required")
        params = _validate(request, body, model)
        self._serial += 1
        return MessagesExchange(params, behaviour, self._serial)


ANTHROPIC_MESSAGES = AnthropicMessages()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
