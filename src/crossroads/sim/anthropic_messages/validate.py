"""Messages request checks, in Anthropic's words and status 400: unknown top-level fields, a missing `model` /
`max_tokens` / `messages`, malformed turns and blocks, tool results that answer no call, forged thinking
signatures, sampling and thinking settings the API refuses (see the package's docstring for the list).
`check_request` turns a valid body into `Params`."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from ..checks import is_integer, is_number
from ..tools import pair_answers
from ..wire import SimError
from .errors import expected, extra, invalid, required
from .thinking import verify_signature

__all__ = ["Params", "check_request"]

API_VERSION: Final = "2023-06-01"
STRUCTURED_OUTPUTS_BETA: Final = "structured-outputs-2025-11-13"
MIN_THINKING_BUDGET: Final = 1024

USER_BLOCKS: Final = ("text", "image", "document", "tool_result")
ASSISTANT_BLOCKS: Final = ("text", "tool_use", "thinking", "redacted_thinking", "server_tool_use",
                           "web_search_tool_result")
IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_CHOICES: Final = ("auto", "any", "tool", "none")
#: Top-level request fields the API knows (Messages reference); anything else is refused.
FIELDS: Final = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "output_config", "service_tier", "cache_control", "container",
    "inference_geo", "diagnostics", "speed", "user_profile_id", "workspace_id", "context_management",
    "mcp_servers",
})

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


@dataclass(slots=True)
class Params:
    """A valid request (string content made one text block), as the plan and the rendering need it."""

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


def _check_range(body: Mapping[str, Any], name: str, low: float, high: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if name == "top_k":
        if not is_integer(value):
            raise expected(name, "a valid integer")
    elif not is_number(value):
        raise expected(name, "a valid number")
    if value < low:
        raise expected(name, f"greater than or equal to {low:g}")
    if high is not None and value > high:
        raise expected(name, f"less than or equal to {high:g}")


def _check_cache_control(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise expected(path, "a valid dictionary")
    if value.get("type") != "ephemeral":
        raise invalid(f"{path}.type: Input should be 'ephemeral'")
    ttl = value.get("ttl")
    if ttl is not None and ttl not in ("5m", "1h"):
        raise invalid(f"{path}.ttl: Input should be '5m' or '1h'")
    return value


def _check_text(block: Mapping[str, Any], path: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise required(f"{path}.text") if text is None else expected(f"{path}.text", "a valid string")
    if not text:
        raise invalid("messages: text content blocks must be non-empty")


def _check_source(block: Mapping[str, Any], path: str, kinds: Mapping[str, tuple[str, ...]]) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise required(f"{path}.source")
    kind = str(source.get("type"))
    if kind == "url":
        if not isinstance(source.get("url"), str):
            raise required(f"{path}.source.url")
        return
    if kind not in kinds:
        allowed = ", ".join(f"'{k}'" for k in (*kinds, "url"))
        raise invalid(f"{path}.source: Input tag '{kind}' found using 'type' does not match any of the "
                      f"expected tags: {allowed}")
    media_type = source.get("media_type")
    if media_type not in kinds[kind]:
        allowed = ", ".join(f"'{m}'" for m in kinds[kind])
        raise invalid(f"{path}.source.{kind}.media_type: Input should be {allowed}")
    data = source.get("data")
    if not isinstance(data, str):
        raise required(f"{path}.source.{kind}.data")
    if kind == "base64":
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"{path}.source.base64.data: invalid base64 data") from None


_IMAGE_SOURCES: Final = {"base64": IMAGE_TYPES}
_DOCUMENT_SOURCES: Final = {"base64": ("application/pdf",), "text": ("text/plain",)}


def _check_block(block: Any, path: str, role: str) -> None:
    if not isinstance(block, dict):
        raise expected(path, "a valid dictionary")
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        tags = ", ".join(f"'{t}'" for t in allowed)
        raise invalid(f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
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
                raise required(f"{path}.{key}")
        if not isinstance(block.get("input"), dict):
            raise expected(f"{path}.input", "a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise required(f"{path}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                where = f"{path}.content.{k}"
                if not isinstance(part, dict) or part.get("type") not in ("text", "image", "document"):
                    raise invalid(f"{where}: Input tag '{(part or {}).get('type')}' found using 'type' does not "
                                  "match any of the expected tags: 'text', 'image', 'document'")
                if part["type"] == "text":
                    _check_text(part, where)
        elif content is not None and not isinstance(content, str):
            raise expected(f"{path}.content", "a valid string")
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise required(f"{path}.thinking")
        signature = block.get("signature")
        if not isinstance(signature, str):
            raise required(f"{path}.signature")
        if not verify_signature(signature):
            raise invalid(f"{path}: Invalid `signature` in `thinking` block")
    elif kind == "redacted_thinking" and not (isinstance(block.get("data"), str) and block["data"]):
        raise required(f"{path}.data")


def _check_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages with string content turned into one text block."""
    messages = body.get("messages")
    if messages is None:
        raise required("messages")
    if not isinstance(messages, list):
        raise expected("messages", "a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    normalised: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise expected(path, "a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise invalid(f'{path}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
                          'parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise invalid(f"{path}.role: Input should be 'user' or 'assistant'")
        for key in message:
            if key not in ("role", "content"):
                raise extra(f"{path}.{key}")
        if "content" not in message:
            raise required(f"{path}.content")
        content = message["content"]
        final_assistant = role == "assistant" and i == len(messages) - 1
        if isinstance(content, str):
            blocks = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = content
            for j, block in enumerate(blocks):
                _check_block(block, f"{path}.content.{j}", role)
        else:
            raise expected(f"{path}.content", "a valid string")
        if not blocks and not final_assistant:
            raise invalid(f"{path}: all messages must have non-empty content except for the optional final "
                          "assistant message")
        if i == 0 and role != "user":
            raise invalid('messages: first message must use the "user" role')
        if normalised and normalised[-1]["role"] == role:
            raise invalid(f'messages: roles must alternate between "user" and "assistant", but found multiple '
                          f'"{role}" roles in a row')
        normalised.append({"role": role, "content": blocks})
    _check_tool_pairing(normalised)
    return normalised


def _check_tool_pairing(messages: Sequence[Mapping[str, Any]]) -> None:
    """Each user turn's `tool_result` blocks come first and answer exactly the previous turn's `tool_use`
    blocks; a final assistant turn (after the first) leaves no `tool_use` unanswered."""
    for i, message in enumerate(messages):
        if message["role"] != "user":
            continue
        previous = messages[i - 1]["content"] if i else []
        uses = [block["id"] for block in previous if block.get("type") == "tool_use"]
        content = message["content"]
        results = [j for j, block in enumerate(content) if block.get("type") == "tool_result"]
        unknown, missing = pair_answers(uses, [content[j]["tool_use_id"] for j in results])
        other = next((j for j, block in enumerate(content) if block.get("type") != "tool_result"), len(content))
        late = next((j for j in results if j > other), None)
        if unknown is not None and (late is None or results[unknown] <= late):
            raise invalid(f"messages.{i}.content.{results[unknown]}: unexpected `tool_use_id` found in "
                          f"`tool_result` blocks: {content[results[unknown]]['tool_use_id']}. Each `tool_result` "
                          "block must have a corresponding `tool_use` block in the previous message.")
        if late is not None:
            raise invalid(f"messages.{i}: `tool_result` blocks must come first in the user message, before any "
                          "other content.")
        if missing:
            raise _unanswered(i, missing)
    last = messages[-1]
    if last["role"] == "assistant" and len(messages) > 1:
        pending = [block["id"] for block in last["content"] if block.get("type") == "tool_use"]
        if pending:
            raise _unanswered(len(messages) - 1, pending)


def _unanswered(position: int, ids: Sequence[str]) -> SimError:
    return invalid(f"messages.{position}: `tool_use` ids were found without `tool_result` blocks immediately "
                   f"after: {', '.join(ids)}. Each `tool_use` block must have a corresponding `tool_result` block "
                   "in the next message.")


def _check_system(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    if not isinstance(system, list):
        raise expected("system", "a valid string")
    for k, block in enumerate(system):
        path = f"system.{k}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"{path}.type: Input should be 'text'")
        _check_text(block, path)
        if block.get("cache_control") is not None:
            _check_cache_control(block["cache_control"], f"{path}.cache_control")
    return system


def _check_web_search(tool: Mapping[str, Any], path: str) -> None:
    """The `web_search` server tool ("Web search tool"): named `web_search`, `max_uses` at least 1, and
    `allowed_domains` or `blocked_domains`, not both."""
    kind = tool["type"]
    if not re.fullmatch(r"web_search_\d{8}", kind):
        raise invalid(f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected tags")
    if tool.get("name") != "web_search":
        raise invalid(f"{path}.{kind}.name: Input should be 'web_search'")
    uses = tool.get("max_uses")
    if uses is not None and (not is_integer(uses) or uses < 1):
        raise expected(f"{path}.{kind}.max_uses", "greater than or equal to 1")
    if tool.get("allowed_domains") and tool.get("blocked_domains"):
        raise invalid(f"{path}.{kind}: allowed_domains and blocked_domains cannot be used together")


def _check_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise expected("tools", "a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise expected(path, "a valid dictionary")
        if str(tool.get("type", "")).startswith("web_search_"):
            _check_web_search(tool, path)
            continue
        if tool.get("type", "custom") != "custom":
            continue  # other server tools (code execution, ...) are accepted and never called
        name = tool.get("name")
        if not isinstance(name, str):
            raise required(f"{path}.custom.name")
        if not _TOOL_NAME.match(name):
            raise invalid(f"{path}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if name in names:
            raise invalid("tools: Tool names must be unique.")
        names.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise required(f"{path}.custom.input_schema")
        if schema.get("type") != "object":
            raise invalid(f"{path}.custom.input_schema.type: Input should be 'object'")
        for key in tool:
            if key not in ("type", "name", "description", "input_schema", "cache_control", "strict"):
                raise extra(f"{path}.custom.{key}")
        if tool.get("cache_control") is not None:
            _check_cache_control(tool["cache_control"], f"{path}.custom.cache_control")
    return tools


def _check_tool_choice(body: Mapping[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise expected("tool_choice", "a valid dictionary")
    kind = choice.get("type")
    if kind not in TOOL_CHOICES:
        tags = ", ".join(f"'{t}'" for t in TOOL_CHOICES)
        raise invalid(f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected "
                      f"tags: {tags}")
    if not tools and kind != "none":
        raise invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise required("tool_choice.tool.name")
        if name not in {tool.get("name") for tool in tools}:
            raise invalid(f"tool_choice: Tool '{name}' not found in tools")
    flag = choice.get("disable_parallel_tool_use")
    if flag is not None and (kind == "none" or not isinstance(flag, bool)):
        raise extra("tool_choice.none.disable_parallel_tool_use") if kind == "none" else \
            expected(f"tool_choice.{kind}.disable_parallel_tool_use", "a valid boolean")
    return choice


def _check_thinking(body: Mapping[str, Any], max_tokens: int) -> tuple[int | None, str]:
    thinking = body.get("thinking")
    if thinking is None:
        return None, "summarized"
    if not isinstance(thinking, dict):
        raise expected("thinking", "a valid dictionary")
    kind = thinking.get("type")
    if kind == "disabled":
        return None, "summarized"
    if kind != "enabled":
        raise invalid(f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                      "'enabled', 'disabled'")
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise required("thinking.enabled.budget_tokens")
    if not is_integer(budget):
        raise expected("thinking.enabled.budget_tokens", "a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise expected("thinking.enabled.budget_tokens", f"greater than or equal to {MIN_THINKING_BUDGET}")
    if budget >= max_tokens:
        raise invalid(f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                      f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size")
    display = thinking.get("display") or "summarized"
    if display not in ("summarized", "omitted"):
        raise invalid("thinking.enabled.display: Input should be 'summarized' or 'omitted'")
    if body.get("temperature") not in (None, 1):
        raise invalid(f"`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                      f"documentation at {_THINKING_DOCS}#feature-compatibility")
    if body.get("top_k") is not None:
        raise invalid(f"`top_k` must be unset when thinking is enabled. Please consult our documentation at "
                      f"{_THINKING_DOCS}#feature-compatibility")
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:
        raise invalid(f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. Please "
                      f"consult our documentation at {_THINKING_DOCS}#feature-compatibility")
    choice = body.get("tool_choice") or {}
    if choice.get("type") in ("any", "tool"):
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
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
        raise invalid(
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
            raise expected("output_config", "a valid dictionary")
        for key in config:
            if key not in ("format", "effort"):
                raise extra(f"output_config.{key}")
        if config.get("format") is not None:
            formats.append(("output_config.format", config["format"]))
    if "output_format" in body:
        if STRUCTURED_OUTPUTS_BETA not in betas:
            raise extra("output_format")
        formats.append(("output_format", body["output_format"]))
    if not formats:
        return None
    path, fmt = formats[-1]
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid(f"{path}.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise required(f"{path}.schema")
    return schema


def check_request(request: web.Request, body: Any, model: str | None) -> Params:
    if not isinstance(body, dict):
        raise expected("body", "a valid dictionary")
    betas = {beta.strip() for value in request.headers.getall("anthropic-beta", []) for beta in value.split(",")}
    for key in body:
        if key not in FIELDS and not (key == "output_format" and STRUCTURED_OUTPUTS_BETA in betas):
            raise extra(key)
    if "model" not in body or not model:
        raise required("model")
    if not isinstance(body["model"], str):
        raise expected("model", "a valid string")
    if "max_tokens" not in body:
        raise required("max_tokens")
    max_tokens = body["max_tokens"]
    if not is_integer(max_tokens):
        raise expected("max_tokens", "a valid integer")
    if max_tokens < 0:
        raise expected("max_tokens", "greater than or equal to 0")
    messages = _check_messages(body)
    system = _check_system(body)
    _check_range(body, "temperature", 0, 1)
    _check_range(body, "top_p", 0, 1)
    _check_range(body, "top_k", 0, None)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise expected("stream", "a valid boolean")
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise expected("stop_sequences", "a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise expected("metadata", "a valid dictionary")
        for key, value in metadata.items():
            if key != "user_id":
                raise extra(f"metadata.{key}")
            if value is not None and not isinstance(value, str):
                raise expected("metadata.user_id", "a valid string")
    tools = _check_tools(body)
    tool_choice = _check_tool_choice(body, tools)
    budget, display = _check_thinking(body, max_tokens)
    if budget is not None:
        _check_thinking_turn(messages)
    cache_control = body.get("cache_control")
    if cache_control is not None:
        _check_cache_control(cache_control, "cache_control")
    return Params(
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
