"""Amazon Bedrock's Converse API: `POST /model/{modelId}/converse` and `/model/{modelId}/converse-stream`.

The request (Bedrock API reference, "Converse": `messages` of content blocks, `system`, `inferenceConfig`,
`toolConfig`) is checked for Converse's own shape, then put in Anthropic's Messages shape — the blocks map
one to one — and planned and checked further by the Messages simulator; its reply is rendered back as
Converse's: `output.message`, `stopReason`, `usage`, `metrics`, and for a stream the event-stream messages
`messageStart`, `contentBlockStart` (tool uses), `contentBlockDelta`, `contentBlockStop`, `messageStop`
and `metadata`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from ..anthropic_messages.render import MessagesExchange
from ..anthropic_messages.validate import check_request
from ..behaviour import Behaviour
from ..wire import SimError, StreamEvent
from . import eventstream
from .bedrock import Bedrock, BedrockExchange, bedrock_error

__all__ = ["CONVERSE", "Converse", "ConverseExchange"]

_FIELDS: Final = frozenset({"messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields",
                            "guardrailConfig", "performanceConfig", "promptVariables", "requestMetadata",
                            "additionalModelResponseFieldPaths"})
_INFERENCE: Final[Mapping[str, str]] = {"maxTokens": "max_tokens", "temperature": "temperature", "topP": "top_p",
                                        "stopSequences": "stop_sequences"}
_DEFAULT_MAX_TOKENS: Final = 4096
#: Anthropic delta type → (Converse delta member, the Anthropic field it carries).
_DELTAS: Final[Mapping[str, tuple[str, str]]] = {
    "text_delta": ("text", "text"), "input_json_delta": ("toolUse", "partial_json"),
    "thinking_delta": ("reasoningContent", "thinking"), "signature_delta": ("reasoningContent", "signature")}


def _invalid(message: str) -> SimError:
    return bedrock_error(400, message)


def _block(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or len(block) != 1:
        raise _invalid(f"{where}: a content block has exactly one member")
    [(kind, value)] = block.items()
    if kind == "text" and isinstance(value, str):
        return {"type": "text", "text": value}
    if kind in ("image", "document") and isinstance(value, dict):
        data = (value.get("source") or {}).get("bytes")
        if not isinstance(data, str):
            raise _invalid(f"{where}.{kind}.source: bytes are required")
        media = f"image/{value.get('format')}" if kind == "image" else "application/pdf"
        return {"type": kind, "source": {"type": "base64", "media_type": media, "data": data}}
    if kind == "toolUse" and isinstance(value, dict):
        return {"type": "tool_use", "id": value.get("toolUseId"), "name": value.get("name"),
                "input": value.get("input")}
    if kind == "toolResult" and isinstance(value, dict):
        texts = [{"type": "text", "text": part.get("text", "")} for part in value.get("content") or ()]
        return {"type": "tool_result", "tool_use_id": value.get("toolUseId"), "content": texts,
                **({"is_error": True} if value.get("status") == "error" else {})}
    if kind == "reasoningContent" and isinstance(value, dict):
        text = value.get("reasoningText") or {}
        return {"type": "thinking", "thinking": text.get("text", ""), "signature": text.get("signature", "")}
    raise _invalid(f"{where}: unknown content block {kind!r}")


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages: at least one message is required")
    out = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: must be user or assistant")
        blocks: list[dict[str, Any]] = []
        for j, block in enumerate(message.get("content") or ()):
            if isinstance(block, dict) and "cachePoint" in block:
                if blocks:
                    blocks[-1]["cache_control"] = {"type": "ephemeral"}
                continue
            blocks.append(_block(block, f"messages.{i}.content.{j}"))
        out.append({"role": message["role"], "content": blocks})
    return out


def to_messages_body(body: Any, model: str | None, stream: bool) -> dict[str, Any]:
    """A Converse request in Anthropic's Messages shape, after checking what is Converse's own."""
    if not isinstance(body, dict):
        raise _invalid("Malformed input request: expected an object")
    for key in body:
        if key not in _FIELDS:
            raise _invalid(f"Malformed input request: extraneous key [{key}] is not permitted")
    out: dict[str, Any] = {"model": model, "messages": _messages(body.get("messages"))}
    system = [part.get("text", "") for part in body.get("system") or () if isinstance(part, dict) and "text" in part]
    if system:
        out["system"] = "\n\n".join(system)
    config = body.get("inferenceConfig") or {}
    for key, value in config.items():
        if key not in _INFERENCE:
            raise _invalid(f"inferenceConfig: extraneous key [{key}] is not permitted")
        out[_INFERENCE[key]] = value
    out.setdefault("max_tokens", _DEFAULT_MAX_TOKENS)
    tools = body.get("toolConfig")
    if tools is not None:
        specs = [tool.get("toolSpec") or {} for tool in tools.get("tools") or ()]
        if not specs:
            raise _invalid("toolConfig.tools: at least one tool is required")
        out["tools"] = [{"name": s.get("name"), "description": s.get("description", ""),
                         "input_schema": (s.get("inputSchema") or {}).get("json")} for s in specs]
        choice = tools.get("toolChoice")
        if isinstance(choice, dict) and choice:
            [(kind, value)] = choice.items()
            out["tool_choice"] = {"type": kind} if kind in ("auto", "any") else {"type": "tool", **value}
    if stream:
        out["stream"] = True
    return out


def _usage(raw: Mapping[str, Any]) -> dict[str, Any]:
    usage = {"inputTokens": raw.get("input_tokens", 0), "outputTokens": raw.get("output_tokens", 0)}
    usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"] + (raw.get("cache_read_input_tokens") or 0) + (
        raw.get("cache_creation_input_tokens") or 0)
    if raw.get("cache_read_input_tokens"):
        usage["cacheReadInputTokens"] = raw["cache_read_input_tokens"]
    if raw.get("cache_creation_input_tokens"):
        usage["cacheWriteInputTokens"] = raw["cache_creation_input_tokens"]
    return usage


def _content(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}}
    if kind == "thinking":
        return {"reasoningContent": {"reasoningText": {"text": block["thinking"], "signature": block["signature"]}}}
    return None


def _event(kind: str, payload: Mapping[str, Any]) -> bytes:
    return eventstream.message({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                               orjson.dumps(payload))


class ConverseExchange(BedrockExchange):
    """A Messages reply recast in Converse's shape (body and stream events)."""

    __slots__ = ()
    request_id = "00000000-0000-4000-8000-0000000000c0"

    def body(self) -> bytes:
        reply = orjson.loads(self._inner.body())
        content = [c for c in (_content(block) for block in reply["content"]) if c is not None]
        return orjson.dumps({"output": {"message": {"role": "assistant", "content": content}},
                             "stopReason": reply["stop_reason"], "usage": _usage(reply["usage"]),
                             "metrics": {"latencyMs": 120}})

    def events(self) -> Iterator[StreamEvent]:
        kinds: dict[int, str] = {}
        for event in self._inner.events():
            payload = orjson.loads(event.data.split(b"\ndata: ", 1)[1])
            for data in self._converse(payload, kinds):
                yield StreamEvent(data, event.kind, event.tokens)

    def _converse(self, event: Mapping[str, Any], kinds: dict[int, str]) -> Iterator[bytes]:
        kind = event["type"]
        if kind == "message_start":
            yield _event("messageStart", {"role": "assistant"})
        elif kind == "content_block_start":
            block = event["content_block"]
            kinds[event["index"]] = block["type"]
            if block["type"] == "tool_use":
                yield _event("contentBlockStart", {"contentBlockIndex": event["index"], "start": {
                    "toolUse": {"toolUseId": block["id"], "name": block["name"]}}})
        elif kind == "content_block_delta":
            delta = event["delta"]
            field = _DELTAS.get(delta["type"])
            if field is not None:
                name, key = field
                value = delta[key] if name != "toolUse" else {"input": delta[key]}
                if name == "reasoningContent":
                    value = {key.replace("thinking", "text"): delta[key]}
                yield _event("contentBlockDelta", {"contentBlockIndex": event["index"], "delta": {name: value}})
        elif kind == "content_block_stop":
            yield _event("contentBlockStop", {"contentBlockIndex": event["index"]})
        elif kind == "message_delta":
            yield _event("messageStop", {"stopReason": event["delta"]["stop_reason"]})
            yield _event("metadata", {"usage": _usage({**self._inner.usage, **event.get("usage", {})}),
                                      "metrics": {"latencyMs": 120}})

    def malformed_event(self) -> bytes:
        return eventstream.message({":event-type": "contentBlockDelta", ":content-type": "application/json",
                                    ":message-type": "event"}, b'{"contentBlockIndex":0,"delta":{')

    def error_event(self) -> bytes:
        return eventstream.exception("modelStreamErrorException", "The model stream failed. Try again.")


class Converse(Bedrock):
    name = "bedrock-converse"

    def prepare(self, request: web.Request, body: Any, model: str | None,
                behaviour: Behaviour) -> ConverseExchange:
        self._serial += 1
        messages = to_messages_body(body, model, request.path.endswith("/converse-stream"))
        try:
            params = check_request(request, messages, model)
        except SimError as exc:  # Anthropic's shape → Bedrock's
            message = orjson.loads(exc.body).get("error", {}).get("message", "Malformed input request")
            raise bedrock_error(exc.status, message) from None
        return ConverseExchange(MessagesExchange(params, behaviour, self._serial))


CONVERSE = Converse()
