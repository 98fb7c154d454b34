"""OpenAI chat messages → Gemini `systemInstruction` and `contents`.

Gemini API reference, `Content` and `Part` (https://ai.google.dev/api/caching#Content):

  * system and developer messages become the parts of `systemInstruction`;
  * `user` and `tool` messages become `user` turns, `assistant` messages `model` turns, and consecutive turns
    of the same role are merged, since Gemini expects the roles to alternate;
  * text → `{text}`; images, PDFs, audio and video → `inlineData {mimeType, data}` for base64 `data:` URLs
    and `fileData {mimeType, fileUri}` for other URLs (the MIME type guessed from the extension);
  * assistant `tool_calls` → `functionCall {name, args}` parts; `tool` messages → `functionResponse
    {name, response}` parts, the name found from the `tool_call_id` in the earlier assistant message (Gemini
    matches responses to calls by name and order, so call ids are not sent);
  * thought signatures come back from `reasoning_details` (`reasoning.encrypted`, format
    `google-gemini-v1`): one whose `id` names a tool call goes on that call's `functionCall` part, others on
    the turn's first part (Thought signatures guide: https://ai.google.dev/gemini-api/docs/thought-signatures).
    Thought text itself is not sent back; Gemini needs only the signatures.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote_to_bytes, urlsplit

import orjson

from crossroads.errors import InvalidParameter

__all__ = ["REASONING_FORMAT", "to_contents"]

REASONING_FORMAT: Final = "google-gemini-v1"
#: Gemini 3 rejects a function call without its thought signature; for a call from elsewhere (another
#: model, or a client that dropped `reasoning_details`) the thought-signatures guide documents this value,
#: which skips the check.
SKIP_SIGNATURE: Final = "skip_thought_signature_validator"
_SIGNATURE_REQUIRED: Final = ("gemini-3",)
_AUDIO_TYPES: Final = {"wav": "audio/wav", "mp3": "audio/mp3", "aiff": "audio/aiff", "aac": "audio/aac",
                       "ogg": "audio/ogg", "flac": "audio/flac", "m4a": "audio/mp4", "pcm16": "audio/pcm",
                       "pcm24": "audio/pcm"}


def to_contents(messages: Sequence[Mapping[str, Any]], upstream_model: str) \
        -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(`systemInstruction` or None, `contents`) for a checked list of messages."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id → function name, from the assistant turns seen so far
    needs_signature = upstream_model.startswith(_SIGNATURE_REQUIRED)
    for i, message in enumerate(messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _texts(message.get("content")) if text)
            continue
        if role == "assistant":
            parts = _model_parts(message, i, names, needs_signature)
            turn = "model"
        elif role == "tool":
            parts = _tool_parts(message, i, names)
            turn = "user"
        else:
            parts = _user_parts(message, i)
            turn = "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    return ({"parts": system} if system else None), contents


def _user_parts(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    content = message.get("content")
    name = message.get("name")
    if isinstance(content, str):
        return [{"text": f"{name}: {content}" if name else content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or ()):
        converted = _part(part, f"messages[{index}].content[{j}]")
        if converted is not None:
            parts.append(converted)
    if name and parts and "text" in parts[0]:
        parts[0] = {"text": f"{name}: {parts[0]['text']}"}
    return parts


def _model_parts(message: Mapping[str, Any], index: int, names: dict[str, str], needs_signature: bool) \
        -> list[dict[str, Any]]:
    signatures = _signatures(message.get("reasoning_details"))
    parts: list[dict[str, Any]] = []
    name = message.get("name")
    for text in _texts(message.get("content")):
        if text:
            parts.append({"text": f"{name}: {text}" if name and not parts else text})
    first_call: dict[str, Any] | None = None
    for j, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        names[call["id"]] = function["name"]
        part: dict[str, Any] = {"functionCall": {"name": function["name"],
                                                 "args": _arguments(function.get("arguments"), index, j)}}
        signature = signatures.pop(call["id"], None)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
        first_call = first_call or part
    loose = signatures.pop(None, None)
    if loose is not None and parts and "thoughtSignature" not in parts[0]:
        parts[0]["thoughtSignature"] = loose
    if needs_signature and first_call is not None and "thoughtSignature" not in first_call:
        first_call["thoughtSignature"] = SKIP_SIGNATURE
    return parts


def _tool_parts(message: Mapping[str, Any], index: int, names: Mapping[str, str]) -> list[dict[str, Any]]:
    call_id = message["tool_call_id"]
    name = names.get(call_id) or message.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidParameter(f"messages[{index}].tool_call_id",
                               f"{call_id!r} matches no tool call of an earlier assistant message "
                               "(Gemini needs the called function's name)")
    content = message.get("content")
    extra: list[dict[str, Any]] = []
    if isinstance(content, str):
        text = content
    else:
        texts = []
        for j, part in enumerate(content or ()):
            if part.get("type") == "text":
                texts.append(part["text"])
            else:
                converted = _part(part, f"messages[{index}].content[{j}]")
                if converted is not None:
                    extra.append(converted)
        text = "".join(texts)
    return [{"functionResponse": {"name": name, "response": _function_response(text)}}, *extra]


def _function_response(text: str) -> dict[str, Any]:
    """A JSON object result is the response itself; anything else is wrapped as `{"result": ...}` (the
    `response` field must be a JSON object)."""
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                return value
    return {"result": text}


def _arguments(raw: Any, index: int, j: int) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidParameter(f"messages[{index}].tool_calls[{j}].function.arguments",
                               "must be a JSON object (Gemini takes function arguments as an object)")
    return value


def _signatures(details: Any) -> dict[str | None, str]:
    """Thought signatures to restore, keyed by the tool call id they belong to (None: the turn's)."""
    found: dict[str | None, str] = {}
    if not isinstance(details, list):
        return found
    for detail in details:
        # Only Gemini's own: another provider's blob would be rejected as a corrupted signature.
        if not isinstance(detail, dict) or detail.get("format") != REASONING_FORMAT:
            continue
        if detail.get("type") == "reasoning.encrypted" and isinstance(detail.get("data"), str):
            key = detail.get("id") if isinstance(detail.get("id"), str) else None
            found.setdefault(key, detail["data"])
        elif detail.get("type") == "reasoning.text" and isinstance(detail.get("signature"), str):
            found.setdefault(None, detail["signature"])
    return found


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content if isinstance(part, dict) and part.get("type") == "text"]
    return []


def _part(part: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    kind = part.get("type")
    if kind == "text":
        return {"text": part["text"]}
    if kind == "image_url":
        image = part["image_url"]
        return _media(image["url"] if isinstance(image, dict) else image, None)
    if kind == "file":
        file = part["file"]
        source = file.get("file_data") or file.get("file_id")
        return _media(source, mimetypes.guess_type(file.get("filename") or "")[0])
    if kind == "input_audio":
        audio = part["input_audio"]
        fmt = str(audio.get("format") or "wav").lower()
        return {"inlineData": {"mimeType": _AUDIO_TYPES.get(fmt, f"audio/{fmt}"), "data": audio["data"]}}
    if kind in ("video_url", "input_video"):
        return _media(part["video_url"]["url"], None)
    raise InvalidParameter(f"{path}.type", f"{kind} parts cannot be sent to Gemini")


def _media(url: str, mime_type: str | None) -> dict[str, Any]:
    """A `data:` URL → `inlineData`; any other URL → `fileData` (Gemini fetches it)."""
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        fields = header.split(";")
        mime = fields[0] or mime_type or "application/octet-stream"
        data = payload if "base64" in fields[1:] else base64.b64encode(unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": mime, "data": data}}
    file: dict[str, Any] = {}
    guessed = mime_type or mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed:
        file["mimeType"] = guessed
    file["fileUri"] = url
    return {"fileData": file}
