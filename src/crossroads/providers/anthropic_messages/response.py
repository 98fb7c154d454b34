"""A non-streamed Anthropic `Message` → an OpenAI `chat.completion` choice, usage and finish reason.

Anthropic API reference, "Messages" → "Create a Message" (response: `content` blocks, `stop_reason`,
`usage`), "Prompt caching" (`cache_read_input_tokens`, `cache_creation_input_tokens`, the `cache_creation`
TTL split), "Extended thinking" (`thinking` / `redacted_thinking` blocks and their signatures) and "Web
search tool" (citations on text blocks → `annotations`, `citations.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.anthropic_messages.citations import annotations_of
from crossroads.providers.anthropic_messages.errors import error_from_payload
from crossroads.providers.anthropic_messages.messages import REASONING_FORMAT
from crossroads.providers.anthropic_messages.params import JSON_TOOL
from crossroads.providers.base import Completion, malformed
from crossroads.schema.usage import Usage

#: Anthropic `stop_reason` → OpenRouter's normalised finish reason.
FINISH_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(native: str | None, answered_in_json: bool) -> str | None:
    """The normalised reason; a reply given through the JSON tool (and no other tool) ends with "stop"."""
    if native is None:
        return None
    if native == "tool_use" and answered_in_json:
        return "stop"
    return FINISH_REASONS.get(native, "stop")


def usage_from(raw: Any) -> Usage | None:
    """Anthropic's `input_tokens` excludes cached tokens, so the prompt total is input + cache reads + cache
    writes; the ledger prices each part. Writes split into 5-minute and 1-hour ones when reported."""
    if not isinstance(raw, dict):
        return None
    uncached = raw.get("input_tokens")
    output = raw.get("output_tokens")
    if not isinstance(uncached, int) or not isinstance(output, int):
        return None
    read = raw.get("cache_read_input_tokens")
    written = raw.get("cache_creation_input_tokens")
    split = raw.get("cache_creation")
    written_1h = split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None
    details = raw.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    server = raw.get("server_tool_use")
    searches = server.get("web_search_requests") if isinstance(server, dict) else None
    return Usage(
        prompt_tokens=uncached + (read or 0) + (written or 0),
        completion_tokens=output,
        cached_tokens=read,
        cache_write_tokens=None if written is None else written - (written_1h or 0),
        cache_write_1h_tokens=written_1h,
        reasoning_tokens=thinking if isinstance(thinking, int) else None,
        web_search_requests=searches if isinstance(searches, int) else None,
    )


def reasoning_text(text: str, index: int, signature: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "reasoning.text", "text": text}
    if signature is not None:
        detail["signature"] = signature
    detail.update(format=REASONING_FORMAT, index=index)
    return detail


def reasoning_encrypted(data: str, index: int) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": data, "format": REASONING_FORMAT, "index": index}


def parse(body: bytes, endpoint: Endpoint) -> Completion:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed(endpoint, body) from exc
    if not isinstance(data, dict):
        raise malformed(endpoint, body)
    if data.get("type") == "error":
        raise error_from_payload(data.get("error"), 502, endpoint)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed(endpoint, body)
    texts: list[str] = []
    cited: list[dict[str, Any]] = []
    written = 0
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    json_answer: str | None = None
    for block in content:
        if not isinstance(block, dict):
            raise malformed(endpoint, body)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            texts.append(text)
            cited += annotations_of(block.get("citations"), written, written + len(text))
            written += len(text)
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            details.append(reasoning_text(block.get("thinking") or "", len(details), block.get("signature")))
        elif kind == "redacted_thinking":
            details.append(reasoning_encrypted(block.get("data") or "", len(details)))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == JSON_TOOL:
                json_answer = arguments
            else:
                calls.append({"id": block.get("id"), "type": "function",
                              "function": {"name": block.get("name"), "arguments": arguments}})
        # Server tool blocks (web search results, code execution...) have no Chat Completions form; the
        # searches' citations come with the text (`citations.py`).
    native = data.get("stop_reason")
    if json_answer is not None:
        texts = [json_answer]  # the answer is the JSON alone, whatever text came with it
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "reasoning": "".join(thoughts) or None,
    }
    if details:
        message["reasoning_details"] = details
    if cited and json_answer is None:
        message["annotations"] = cited
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None,
              "finish_reason": finish_reason(native, json_answer is not None and not calls),
              "native_finish_reason": native}
    # The message itself goes along (`extra["native"]`) for a client that speaks this API (`/messages`).
    return Completion(choices=[choice], usage=usage_from(data.get("usage")), upstream_id=data.get("id"),
                      extra={"native": data})
