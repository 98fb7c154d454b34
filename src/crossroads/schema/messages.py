"""The `POST /messages` request (Anthropic's Messages API, as OpenRouter serves it): checked in Anthropic's
own terms, then read into the typed `ChatRequest` every adapter takes.

Reference: Anthropic API reference, "Messages" → "Create a Message" (request body), and the "Tool use",
"Extended thinking", "Vision", "PDF support", "Prompt caching" and "Structured outputs" guides; OpenRouter
adds its `models` fallbacks and `provider` preferences. The translation keeps what Anthropic's blocks carry
in the forms the Chat Completions request already has for them:

  * `system` → a system message (text parts keep their `cache_control`);
  * `text`, `image` (base64 → a `data:` URL, or a URL) and `document` (PDF, plain text or a URL) blocks →
    content parts, each with its `cache_control`;
  * `tool_use` → the assistant's `tool_calls`; `tool_result` → a `tool` message (before the rest of its
    user turn, as Anthropic orders them); an `is_error` result is marked in its text;
  * `thinking` / `redacted_thinking` → `reasoning_details` (`reasoning.text` with its signature,
    `reasoning.encrypted`), which the Anthropic Messages adapter turns back into the same blocks;
  * `tools` with `input_schema` → function tools; `tool_choice` auto / any / tool / none, with
    `disable_parallel_tool_use` → `parallel_tool_calls: false`;
  * `thinking` → `reasoning` (`enabled` with `budget_tokens` → a budget; `adaptive` → reasoning on at the
    model's default effort; `disabled` → off);
  * `stop_sequences` → `stop`, `metadata.user_id` → `user`, `output_format` / `output_config.format` →
    `response_format`, `service_tier` (`standard_only` → `default`).

The body itself also travels in `ChatRequest.native`, so an endpoint that speaks the Messages API gets the
client's request as written (server tools and all); every other endpoint gets the translation.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson
from msgspec import structs

from crossroads.catalog.wire_formats import WireFormat
from crossroads.errors import InvalidParameter
from crossroads.schema.chat import EFFORTS, PROVIDER_PREFERENCES, parse_chat_request
from crossroads.schema.fields import (
    INT32_MAX,
    Check,
    Enum,
    Integer,
    ListOf,
    Number,
    Obj,
    OneOf,
    String,
    any_object,
    anything,
    boolean,
    is_list,
    is_str,
    string,
)
from crossroads.schema.request import ChatRequest, Native
from crossroads.schema.server_tools import ANTHROPIC_WEB_SEARCH, anthropic_web_search

#: The upstream wire format that is this API: its endpoints get the client's body as written.
WIRE_FORMAT: Final[WireFormat] = "anthropic_messages"
#: `reasoning_details[].format` of reasoning that came from a Messages API reply (OpenRouter's name).
REASONING_FORMAT: Final = "anthropic-claude-v1"

_thinking = Obj({"type": Enum("enabled", "disabled", "adaptive"), "budget_tokens": Integer(1, INT32_MAX),
                 "display": string}, required=["type"])
_tool_choice = Obj({"type": Enum("auto", "any", "tool", "none"), "name": String(min_length=1),
                    "disable_parallel_tool_use": boolean}, required=["type"])
_format = Obj({"type": Enum("json_schema"), "schema": any_object}, required=["type", "schema"])

#: Every top-level field of the request, its check. `None`-valued fields count as absent.
PARAMETERS: Final[dict[str, Check]] = {
    "model": String(min_length=1),
    "models": ListOf(String(min_length=1)),
    "messages": anything,  # checked block by block in `_turns`
    "system": OneOf("a string or an array of text blocks", (is_str, string), (is_list, ListOf(any_object))),
    "max_tokens": Integer(1, INT32_MAX),
    "temperature": Number(0, 1),
    "top_p": Number(0, 1),
    "top_k": Integer(0, INT32_MAX),
    "stop_sequences": ListOf(string),
    "stream": boolean,
    "tools": ListOf(any_object),
    "tool_choice": _tool_choice,
    "thinking": _thinking,
    "metadata": Obj({"user_id": String(max_length=256)}),
    "service_tier": Enum("auto", "standard_only"),
    "output_format": _format,
    "output_config": Obj({"format": _format, "effort": string}),
    "cache_control": any_object,
    "container": anything,
    "context_management": anything,
    "mcp_servers": anything,
    "inference_geo": anything,
    # OpenRouter's extras
    "provider": PROVIDER_PREFERENCES,
    "session_id": String(max_length=256),
    "plugins": anything,  # checked with the chat request's
    "transforms": anything,
}

#: Tool entries without a `type`, or with these, are the client's own tools; any other type is a server tool
#: the provider runs (web search, code execution...).
_CUSTOM_TOOLS: Final = frozenset({"custom"})
#: Request fields only the Messages API itself understands: sent as written where it is the upstream's
#: wire format, and where it is not, a request that uses them is refused rather than served without them.
#: (`context_management` only edits what the provider keeps of earlier turns: elsewhere it has nothing to
#: act on, so it is dropped; Claude Code sends it with every request.)
NATIVE_ONLY: Final = ("container", "mcp_servers")


def parse_messages_request(body: Any, default_model: str, headers: Mapping[str, str] | None = None) \
        -> ChatRequest:
    """Check a decoded Messages body and type it as a `ChatRequest` carrying the body in `native`."""
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    fields = {key: PARAMETERS[key](value, key) for key, value in body.items()
              if value is not None and key in PARAMETERS}
    if "max_tokens" not in fields:
        raise InvalidParameter("max_tokens", "is required")
    chat: dict[str, Any] = {"messages": _conversation(fields.get("system"), body.get("messages")),
                            "max_tokens": fields["max_tokens"]}
    for name in ("model", "models", "temperature", "top_p", "top_k", "stream", "provider", "session_id",
                 "cache_control", "plugins", "transforms"):
        if name in fields:
            chat[name] = fields[name]
    server_tools = _tools(fields.get("tools") or (), chat)
    web = None
    if server_tools == [ANTHROPIC_WEB_SEARCH]:  # the only server tool: the `web` plugin serves it anywhere
        index = next(i for i, tool in enumerate(fields["tools"]) if tool.get("type") == ANTHROPIC_WEB_SEARCH)
        web = anthropic_web_search(fields["tools"][index], f"tools[{index}]")
        server_tools = []
    if "tool_choice" in fields:
        _tool_choice_to_chat(fields["tool_choice"], chat)
    if fields.get("stop_sequences"):
        chat["stop"] = fields["stop_sequences"]
    if "thinking" in fields:
        chat["reasoning"] = _reasoning(fields["thinking"], (fields.get("output_config") or {}).get("effort"))
    user = (fields.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if "service_tier" in fields:
        chat["service_tier"] = "auto" if fields["service_tier"] == "auto" else "default"
    schema_format = (fields.get("output_config") or {}).get("format") or fields.get("output_format")
    if schema_format is not None:
        chat["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": schema_format["schema"]}}
    forwarded = dict(headers or {})
    beta = forwarded.pop("anthropic-beta", None)
    if beta and "x-anthropic-beta" not in forwarded:
        forwarded["x-anthropic-beta"] = beta  # the Messages API's own beta header, forwarded where it means something
    request = parse_chat_request(chat, default_model, forwarded)
    if web is not None and request.plugin("web") is None:
        request = structs.replace(request, plugins=(*request.plugins, web))
    needs = [name for name in NATIVE_ONLY if name in fields] + (["server tools"] if server_tools else [])
    return structs.replace(request, native=Native(wire_format=WIRE_FORMAT, body=body, needs=tuple(needs)))


def _tools(tools: Any, chat: dict[str, Any]) -> list[str]:
    """Custom tools as function tools; the types of the server tools given."""
    functions: list[dict[str, Any]] = []
    server = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, *_CUSTOM_TOOLS):
            server.append(tool["type"])
            continue
        name = String(min_length=1, max_length=128)(tool.get("name"), f"tools[{i}].name")
        schema = any_object(tool.get("input_schema"), f"tools[{i}].input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is True:
            function["strict"] = True
        entry: dict[str, Any] = {"type": "function", "function": function}
        if "cache_control" in tool:
            entry["cache_control"] = tool["cache_control"]
        functions.append(entry)
    if functions:
        chat["tools"] = functions
    return server


def _tool_choice_to_chat(choice: Mapping[str, Any], chat: dict[str, Any]) -> None:
    kind = choice["type"]
    if kind == "tool":
        if "name" not in choice:
            raise InvalidParameter("tool_choice.name", "is required when type is 'tool'")
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif "tools" in chat or kind != "auto":
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True and "tools" in chat:
        chat["parallel_tool_calls"] = False
    if "tools" not in chat:
        chat.pop("tool_choice", None)


def _reasoning(thinking: Mapping[str, Any], effort: Any) -> dict[str, Any]:
    """`thinking` (with `output_config.effort` for adaptive thinking) → `reasoning`; `display: "omitted"`
    asks for the thinking without its text, i.e. excluded."""
    kind = thinking["type"]
    if kind == "disabled":
        return {"enabled": False}
    reasoning: dict[str, Any] = {"exclude": True} if thinking.get("display") == "omitted" else {}
    if kind == "enabled":
        if "budget_tokens" not in thinking:
            raise InvalidParameter("thinking.budget_tokens", "is required when type is 'enabled'")
        return {**reasoning, "max_tokens": thinking["budget_tokens"]}
    if effort in EFFORTS:
        return {**reasoning, "effort": effort}
    return {**reasoning, "enabled": True}


# --- Messages ---------------------------------------------------------------------------------------------


def _conversation(system: Any, messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(system, str):
        if system:
            out.append({"role": "system", "content": system})
    elif system:
        out.append({"role": "system", "content": [_text(block, f"system[{i}]") for i, block in enumerate(system)]})
    if not isinstance(messages, list) or not messages:
        raise InvalidParameter("messages", "expected a non-empty array of messages")
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidParameter(path, "expected a message object")
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        elif not isinstance(content, list):
            raise InvalidParameter(f"{path}.content", "expected a string or an array of content blocks")
        if role == "user":
            out.extend(_user(content, path))
        elif role == "system":  # instructions in the middle of a conversation, as Claude Code sends them
            out.append({"role": "system", "content": [_text(block, f"{path}.content[{j}]")
                                                      for j, block in enumerate(content)]})
        elif role == "assistant":
            out.append(_assistant(content, path))
        else:
            raise InvalidParameter(f"{path}.role", f"must be 'user', 'assistant' or 'system', got {role!r}")
    return out


def _block(block: Any, path: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidParameter(path, "expected a content block with a type")
    kind: str = block["type"]
    return kind


def _text(block: Any, path: str) -> dict[str, Any]:
    if _block(block, path) != "text" or not isinstance(block.get("text"), str):
        raise InvalidParameter(path, "expected a text block {type: 'text', text}")
    return _cached({"type": "text", "text": block["text"]}, block)


def _cached(part: dict[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _user(content: list[Any], path: str) -> list[dict[str, Any]]:
    """One user turn: its tool results as `tool` messages first, then the rest as one user message."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"{path}.content[{j}]"
        kind = _block(block, where)
        if kind == "tool_result":
            results.append(_tool_result(block, where))
        elif kind in ("text", "image", "document"):
            parts.append(_part(block, where))
        elif kind not in ("thinking", "redacted_thinking"):  # reasoning in a user turn means nothing
            raise InvalidParameter(f"{where}.type", f"{kind} blocks are not supported in user messages")
    out = results
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _part(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return _text(block, path)
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidParameter(f"{path}.source", "is required")
    source_type = source.get("type")
    if kind == "image":
        if source_type == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source_type == "url":
            url = String(min_length=1)(source.get("url"), f"{path}.source.url")
        else:
            raise InvalidParameter(f"{path}.source.type", "must be 'base64' or 'url' for images")
        return _cached({"type": "image_url", "image_url": {"url": url}}, block)
    if source_type == "base64":
        data = f"data:{source.get('media_type') or 'application/pdf'};base64,{source.get('data')}"
    elif source_type == "text":
        data = "data:text/plain," + quote(str(source.get("data") or ""))
    elif source_type == "url":
        data = String(min_length=1)(source.get("url"), f"{path}.source.url")
    elif source_type == "content":
        text = "\n\n".join(b.get("text", "") for b in source.get("content") or () if isinstance(b, dict))
        data = "data:text/plain;base64," + base64.b64encode(text.encode()).decode()
    else:
        raise InvalidParameter(f"{path}.source.type", "must be 'base64', 'text', 'content' or 'url' for documents")
    file: dict[str, Any] = {"filename": block.get("title") or "document.pdf", "file_data": data}
    return _cached({"type": "file", "file": file}, block)


def _tool_result(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    tool_use_id = String(min_length=1)(block.get("tool_use_id"), f"{path}.tool_use_id")
    content = block.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):
        content = [_part(part, f"{path}.content[{k}]") for k, part in enumerate(content)
                   if _block(part, f"{path}.content[{k}]") in ("text", "image", "document")]
    elif not isinstance(content, str):
        raise InvalidParameter(f"{path}.content", "expected a string or an array of content blocks")
    if block.get("is_error") is True:
        # Chat Completions has no error flag on a tool result; the model still learns the call failed.
        content = f"Error: {content}" if isinstance(content, str) else [{"type": "text", "text": "Error:"}, *content]
    message: dict[str, Any] = {"role": "tool", "tool_call_id": tool_use_id, "content": content}
    if "cache_control" in block and isinstance(content, list) and content:
        content[-1].setdefault("cache_control", block["cache_control"])
    return message


def _assistant(content: list[Any], path: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"{path}.content[{j}]"
        kind = _block(block, where)
        if kind == "text":
            parts.append(_text(block, where))
        elif kind == "tool_use":
            call_id = String(min_length=1)(block.get("id"), f"{where}.id")
            name = String(min_length=1)(block.get("name"), f"{where}.name")
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        elif kind == "thinking":
            detail: dict[str, Any] = {"type": "reasoning.text", "text": str(block.get("thinking") or "")}
            if isinstance(block.get("signature"), str):
                detail["signature"] = block["signature"]
            details.append({**detail, "format": REASONING_FORMAT, "index": len(details)})
        elif kind == "redacted_thinking":
            details.append({"type": "reasoning.encrypted", "data": str(block.get("data") or ""),
                            "format": REASONING_FORMAT, "index": len(details)})
        # Server tool blocks (web search results...) have no Chat Completions form; an endpoint speaking the
        # Messages API gets them in `native`.
    message: dict[str, Any] = {"role": "assistant", "content": parts or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning_details"] = details
    return message


__all__ = ["NATIVE_ONLY", "PARAMETERS", "REASONING_FORMAT", "WIRE_FORMAT", "parse_messages_request"]
