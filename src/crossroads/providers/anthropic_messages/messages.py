"""OpenAI chat messages → Anthropic's top-level `system` and alternating `messages`.

Anthropic API reference, "Messages" → "Create a Message": `system` is a top-level string or list of text
blocks; `messages` alternate `user` / `assistant` turns, starting with `user`. Guides relied on: "Tool use"
(`tool_use` blocks in the assistant turn, `tool_result` blocks first in the next user turn, same ids),
"Extended thinking" (thinking blocks, signatures kept, sent back before the turn's text and tool use),
"Vision" and "PDF support" (image and document blocks, base64 or URL sources), "Prompt caching"
(`cache_control` on blocks).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import orjson

#: `reasoning_details[].format` of reasoning that came from Anthropic (OpenRouter's name for it).
REASONING_FORMAT: Final = "anthropic-claude-v1"
#: A user turn stands in where Anthropic needs one and the conversation has none (it must start with one).
PLACEHOLDER_TURN: Final = "."
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class UnsupportedContent(ValueError):
    """A message carries something Anthropic cannot take (audio, video, a file id); `request.py` turns it
    into a 400 from this provider."""


@dataclass(slots=True)
class Conversation:
    system: str | list[dict[str, Any]] | None
    messages: list[dict[str, Any]] = field(default_factory=list)

    def ends_tool_loop_without_thinking(self) -> bool:
        """Whether the last user turn answers tool calls of an assistant turn that starts with no thinking
        block: Anthropic rejects such a request while thinking is on ("Extended thinking" → "Preserving
        thinking blocks"), so thinking is not requested then."""
        if len(self.messages) < 2 or self.messages[-1]["role"] != "user":
            return False
        last = self.messages[-1]["content"]
        if not (isinstance(last, list) and any(block.get("type") == "tool_result" for block in last)):
            return False
        previous = self.messages[-2]["content"]
        first = previous[0] if isinstance(previous, list) and previous else {}
        return first.get("type") not in ("thinking", "redacted_thinking")


def translate(messages: Sequence[Mapping[str, Any]]) -> Conversation:
    system: list[dict[str, Any]] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, index))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, index)])
    if not turns or turns[0][0] != "user":
        turns.insert(0, ("user", [{"type": "text", "text": PLACEHOLDER_TURN}]))
    return Conversation(system=_system(system), messages=[_turn(role, blocks, i == len(turns) - 1)
                                                          for i, (role, blocks) in enumerate(turns)])


def _append(turns: list[tuple[str, list[dict[str, Any]]]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Consecutive turns of one role become one turn (tool results of parallel calls, a tool result and the
    user's next words, ...)."""
    if not blocks:
        return
    if turns and turns[-1][0] == role:
        turns[-1][1].extend(blocks)
    else:
        turns.append((role, blocks))


def _turn(role: str, blocks: list[dict[str, Any]], last: bool) -> dict[str, Any]:
    if role == "user" and any(block["type"] == "tool_result" for block in blocks):
        # `tool_result` blocks must come first in their user turn ("Tool use" guide).
        blocks = sorted(blocks, key=lambda block: block["type"] != "tool_result")
    if last and role == "assistant" and blocks[-1]["type"] == "text":
        # A prefilled final assistant turn may not end in whitespace (Messages reference, `messages`).
        blocks[-1] = {**blocks[-1], "text": blocks[-1]["text"].rstrip()}
    if len(blocks) == 1 and blocks[0]["type"] == "text" and blocks[0].keys() == {"type", "text"}:
        return {"role": role, "content": blocks[0]["text"]}
    return {"role": role, "content": blocks}


def _system(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    if not blocks:
        return None
    if all(block.keys() == {"type", "text"} for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    return blocks


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or ():
        if part.get("type") == "text" and part.get("text"):
            blocks.append(_text(part))
    return blocks


def _text(part: Mapping[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part["text"]}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append(_text(part))
        elif kind == "image_url":
            blocks.append(_with_cache(_image(part["image_url"]), part))
        elif kind == "file":
            blocks.append(_with_cache(_document(part["file"], index), part))
        else:
            raise UnsupportedContent(f"messages[{index}]: {kind} content is not supported by this provider")
    return blocks


def _with_cache(block: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _image(image: Any) -> dict[str, Any]:
    url: str = image["url"] if isinstance(image, dict) else image
    if url.startswith("data:"):
        media_type, data = _data_uri(url)
        if media_type not in _IMAGE_TYPES:
            raise UnsupportedContent(f"image type {media_type!r} is not supported (jpeg, png, gif, webp)")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": base64.b64encode(data).decode()}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document(file: Mapping[str, Any], index: int) -> dict[str, Any]:
    data = file.get("file_data")
    if not isinstance(data, str):
        raise UnsupportedContent(f"messages[{index}]: file ids are not supported by this provider; send file_data")
    if data.startswith("data:"):
        media_type, raw = _data_uri(data)
        if media_type == "application/pdf":
            source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(raw).decode()}
        elif media_type.startswith("text/"):
            source = {"type": "text", "media_type": "text/plain", "data": raw.decode("utf-8", "replace")}
        else:
            raise UnsupportedContent(f"messages[{index}]: {media_type} files are not supported (PDF or text)")
    else:
        source = {"type": "url", "url": data}
    block: dict[str, Any] = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _data_uri(uri: str) -> tuple[str, bytes]:
    """(media type, bytes) of a `data:` URI (RFC 2397)."""
    head, sep, payload = uri[5:].partition(",")
    if not sep:
        raise UnsupportedContent("a data: URI has no ',' before its data")
    media_type, *params = head.split(";")
    if "base64" in params:
        try:
            return media_type.lower() or "text/plain", base64.b64decode(payload, validate=False)
        except binascii.Error as exc:
            raise UnsupportedContent("a data: URI holds invalid base64") from exc
    return media_type.lower() or "text/plain", unquote_to_bytes(payload)


def _assistant_blocks(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    blocks = _thinking_blocks(message.get("reasoning_details"))
    content = message.get("content")
    if isinstance(content, str):
        if content.strip():
            blocks.append({"type": "text", "text": content})
    elif content:
        for part in content:
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if isinstance(text, str) and text.strip():
                blocks.append(_text({**part, "text": text}))
    for k, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"],
                       "input": _arguments(function.get("arguments"), index, k)})
    return blocks


def _arguments(arguments: Any, index: int, k: int) -> Any:
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise UnsupportedContent(f"messages[{index}].tool_calls[{k}].function.arguments is not valid JSON") \
            from exc


def _thinking_blocks(details: Any) -> list[dict[str, Any]]:
    """`reasoning_details` from an earlier Anthropic reply → thinking blocks, signatures intact.

    Entries sharing an `index` are pieces of one block, as a client that kept the streamed deltas has them:
    their text is joined and the signature taken. Reasoning from other providers, and text without a
    signature, cannot be verified by Anthropic and is left out.
    """
    if not isinstance(details, list):
        return []
    merged: dict[int, dict[str, Any]] = {}
    for position, detail in enumerate(details):
        if not isinstance(detail, dict) or detail.get("format") not in (None, REASONING_FORMAT):
            continue
        index = detail.get("index")
        key = index if isinstance(index, int) else -1 - position
        block = merged.get(key)
        if detail.get("type") == "reasoning.text":
            if block is None or block["type"] != "thinking":
                block = merged[key] = {"type": "thinking", "thinking": "", "signature": None}
            block["thinking"] += detail.get("text") or ""
            block["signature"] = detail.get("signature") or block["signature"]
        elif detail.get("type") == "reasoning.encrypted" and detail.get("data"):
            merged[key] = {"type": "redacted_thinking", "data": detail["data"]}
    return [block for _, block in sorted(merged.items())
            if block["type"] == "redacted_thinking" or block["signature"]]


def _tool_result(message: Mapping[str, Any], index: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        parts = _user_blocks(content, index)
        if parts:
            block["content"] = parts
    return block
