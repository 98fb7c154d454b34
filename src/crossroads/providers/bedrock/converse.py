"""Bedrock's Converse and ConverseStream APIs: one format for every model family Bedrock hosts (Llama,
Mistral, Nova, DeepSeek, gpt-oss, Qwen...).

Bedrock API reference, "Converse" / "ConverseStream": `POST {base}/model/{modelId}/converse` or
`/converse-stream`. The body is `messages` (alternating `user` / `assistant` turns of content blocks:
`text`, `image` and `document` with base64 `source.bytes`, `toolUse`, `toolResult`, `reasoningContent`,
`cachePoint`), `system` (text blocks), `inferenceConfig` (`maxTokens`, `temperature`, `topP`,
`stopSequences`) and `toolConfig` (`tools[].toolSpec`, `toolChoice` `auto` / `any` / `tool`; there is no
"none": the tools are left out instead). The reply is `output.message` with the same blocks, `stopReason`
(`end_turn`, `tool_use`, `max_tokens`, `stop_sequence`, `guardrail_intervened`, `content_filtered`) and
`usage` (`inputTokens`, `outputTokens`, `cacheReadInputTokens`, `cacheWriteInputTokens`). A stream is AWS
event-stream messages named `messageStart`, `contentBlockStart` (a tool use's id and name),
`contentBlockDelta` (`text`, `toolUse.input` fragments, `reasoningContent`), `contentBlockStop`,
`messageStop` (the stop reason) and `metadata` (usage), each payload the event's JSON.

Converse has no JSON mode: `response_format` becomes a forced tool (`JSON_TOOL`, the Anthropic adapter's
name for the same device) whose input is the answer, handed to the client as the message content.

The conversation is first put in Anthropic's shape (`anthropic_messages.messages.translate`: system apart,
turns alternating from a user turn, tool results merged into user turns), whose blocks map one to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages.messages import UnsupportedContent, translate
from crossroads.providers.anthropic_messages.params import JSON_TOOL
from crossroads.providers.base import (
    Completion,
    Convert,
    ParamTable,
    Piece,
    Plan,
    Rename,
    StreamTranslator,
    Unsupported,
    UpstreamRequest,
    apply_params,
    malformed,
    normalise_finish,
    put,
)
from crossroads.providers.bedrock.eventstream import EXCEPTION_STATUS, EventStreamDecoder
from crossroads.schema.request import ChatRequest
from crossroads.schema.usage import Usage

#: Output cap when neither the request nor the catalog gives one (Converse needs none, but the cost hold
#: and the reply are better bounded).
DEFAULT_MAX_TOKENS: Final = 4096
#: Converse stop reasons → OpenRouter's finish reasons.
FINISH: Final[Mapping[str, str]] = {
    "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}
_IMAGE_FORMATS: Final = frozenset({"png", "jpeg", "gif", "webp"})


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _tools(value: Any, params: Mapping[str, Any], out: dict[str, Any]) -> None:
    specs = []
    for tool in value:
        if tool.get("type", "function") != "function":
            continue
        function = tool["function"]
        spec: dict[str, Any] = {"name": function["name"],
                                "inputSchema": {"json": function.get("parameters") or {"type": "object"}}}
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    if specs:
        put(out, "toolConfig.tools", specs)


def _tool_choice(value: Any, params: Mapping[str, Any], out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        name = (value.get("function") or {}).get("name")
        put(out, "toolConfig.toolChoice", {"tool": {"name": name}} if name else {"auto": {}})
    elif value == "required":
        put(out, "toolConfig.toolChoice", {"any": {}})
    elif value == "none":
        out["_no_tools"] = True  # Converse has no "none": `build` leaves the tools out
    else:
        put(out, "toolConfig.toolChoice", {"auto": {}})


def _response_format(value: Any, params: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`json_schema` / `json_object` → a tool whose input schema is the answer's, forced (`build_body`)."""
    kind = value.get("type")
    if kind not in ("json_schema", "json_object"):
        return
    schema = (value.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    out["_json_tool"] = {"toolSpec": {"name": JSON_TOOL, "inputSchema": {"json": schema or {"type": "object"}},
                                      "description": "Give the final answer as a JSON value matching the schema."}}


#: Every parameter of OpenRouter's chat request, and what Converse gets for it.
PARAMS: Final[ParamTable] = {
    # The output cap: always sent as `inferenceConfig.maxTokens` (`build`).
    "max_tokens": Rename("inferenceConfig.maxTokens"),
    "max_completion_tokens": Rename("inferenceConfig.maxTokens"),
    "temperature": Rename("inferenceConfig.temperature"),
    "top_p": Rename("inferenceConfig.topP"),
    "stop": Rename("inferenceConfig.stopSequences", convert=_as_list),
    "tools": Convert(_tools, needs="tools"),
    "tool_choice": Convert(_tool_choice, needs="tools"),
    # Model-specific fields (`additionalModelRequestFields`) differ per family: not sent.
    "top_k": Unsupported(),
    "frequency_penalty": Unsupported(),
    "presence_penalty": Unsupported(),
    "repetition_penalty": Unsupported(),
    "min_p": Unsupported(),
    "top_a": Unsupported(),
    "seed": Unsupported(),
    "logit_bias": Unsupported(),
    "logprobs": Unsupported(),
    "top_logprobs": Unsupported(),
    "n": Unsupported(),
    "response_format": Convert(_response_format, needs="tools"),
    "parallel_tool_calls": Unsupported(),
    "reasoning": Unsupported(),
    "reasoning_effort": Unsupported(),
    "include_reasoning": Unsupported(),
    "user": Unsupported(),
    "verbosity": Unsupported(),
    "prediction": Unsupported(),
    "web_search_options": Unsupported(),
    "modalities": Unsupported(),
    "audio": Unsupported(),
    "service_tier": Unsupported(),
    "prompt_cache_key": Unsupported(),
    "metadata": Unsupported(),
    "cache_control": Unsupported(),
}


# --- request ------------------------------------------------------------------------------------------------


def build_body(request: ChatRequest, endpoint: Endpoint, plan: Plan) -> dict[str, Any]:
    try:
        conversation = translate(request.messages)
        messages = [{"role": turn["role"], "content": _blocks(turn["content"])} for turn in conversation.messages]
    except UnsupportedContent as exc:
        raise UpstreamError(400, str(exc), provider=endpoint.provider.name) from exc
    out: dict[str, Any] = {"messages": messages}
    system = conversation.system
    if system is not None:
        out["system"] = [{"text": system}] if isinstance(system, str) else _blocks(system)
    apply_params(plan.rows, request.params, out)
    if out.pop("_no_tools", False) or "tools" not in out.get("toolConfig", {}):
        out.pop("toolConfig", None)
    json_tool = out.pop("_json_tool", None)
    if json_tool is not None:
        # The client's own tools stay callable only while the model may choose (`any`); alone, the JSON
        # tool is forced by name.
        tools = out.setdefault("toolConfig", {}).setdefault("tools", [])
        tools.append(json_tool)
        out["toolConfig"]["toolChoice"] = {"any": {}} if len(tools) > 1 else {"tool": {"name": JSON_TOOL}}
    put(out, "inferenceConfig.maxTokens", request.max_output or endpoint.max_completion_tokens or DEFAULT_MAX_TOKENS)
    return out


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict[str, Any]] = []
    for block in content:
        out.append(_block(block))
        if "cache_control" in block:
            out.append({"cachePoint": {"type": "default"}})
    return out


def _block(block: Mapping[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block.get("input") or {}}}
    if kind == "tool_result":
        result = block.get("content")
        texts = [result] if isinstance(result, str) else [
            part.get("text", "") for part in result or () if part.get("type") == "text"]
        out: dict[str, Any] = {"toolUseId": block["tool_use_id"], "content": [{"text": t} for t in texts]}
        if block.get("is_error"):
            out["status"] = "error"
        return {"toolResult": out}
    if kind == "thinking":
        text: dict[str, Any] = {"text": block.get("thinking") or ""}
        if block.get("signature"):
            text["signature"] = block["signature"]
        return {"reasoningContent": {"reasoningText": text}}
    source = block.get("source") or {}
    if kind in ("image", "document") and source.get("type") == "base64":
        media = str(source.get("media_type", ""))
        if kind == "image" and media.removeprefix("image/") in _IMAGE_FORMATS:
            return {"image": {"format": media.removeprefix("image/"), "source": {"bytes": source["data"]}}}
        if kind == "document" and media == "application/pdf":
            return {"document": {"format": "pdf", "name": "document", "source": {"bytes": source["data"]}}}
    raise UnsupportedContent(f"{kind} content of this kind is not supported by Bedrock's Converse API "
                             "(images and PDFs must be inline base64)")


def upstream_request(url: str, headers: dict[str, str], body: dict[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(url=url, headers=headers, body=orjson.dumps(body))


# --- reply --------------------------------------------------------------------------------------------------


def usage_from(raw: Any) -> Usage | None:
    """Converse's `inputTokens` leaves out cache reads and writes, as Anthropic's does."""
    if not isinstance(raw, dict):
        return None
    uncached, output = raw.get("inputTokens"), raw.get("outputTokens")
    if not isinstance(uncached, int) or not isinstance(output, int):
        return None
    read, written = raw.get("cacheReadInputTokens"), raw.get("cacheWriteInputTokens")
    return Usage(prompt_tokens=uncached + (read or 0) + (written or 0), completion_tokens=output,
                 cached_tokens=read, cache_write_tokens=written)


def finish_reason(native: str | None) -> str | None:
    return None if native is None else FINISH.get(native) or normalise_finish(native)


def parse_response(body: bytes, endpoint: Endpoint) -> Completion:
    try:
        data = orjson.loads(body)
        content = data["output"]["message"]["content"]
        assert isinstance(content, list)
    except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError) as exc:
        raise malformed(endpoint, body) from exc
    texts, thoughts, calls = [], [], []
    details: list[dict[str, Any]] = []
    json_answer: str | None = None
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block and block["toolUse"].get("name") == JSON_TOOL:
            json_answer = orjson.dumps(block["toolUse"].get("input") or {}).decode()
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId"), "type": "function", "function": {
                "name": use.get("name"), "arguments": orjson.dumps(use.get("input") or {}).decode()}})
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"].get("reasoningText") or {}
            thoughts.append(reasoning.get("text") or "")
            detail = {"type": "reasoning.text", "text": reasoning.get("text") or "", "index": len(details),
                      "format": "unknown"}
            if reasoning.get("signature"):
                detail["signature"] = reasoning["signature"]
            details.append(detail)
    native = data.get("stopReason")
    if json_answer is not None:
        texts = [json_answer]  # the answer is the JSON alone, whatever text came with it
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                               "refusal": None, "reasoning": "".join(thoughts) or None}
    if details:
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    finish = "stop" if json_answer is not None and not calls else finish_reason(native)
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish,
              "native_finish_reason": native}
    return Completion(choices=[choice], usage=usage_from(data.get("usage")))


class ConverseStream(StreamTranslator):
    """One ConverseStream → chat chunks. Tool calls get an OpenAI `index` in the order their blocks start;
    nothing is sent for `messageStart`, so a stream that fails before any content can still fall back."""

    __slots__ = ("_json_block", "_role_sent", "_tools")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.framing = EventStreamDecoder
        self._role_sent = False
        self._tools: dict[int, int] = {}  # Converse block index → OpenAI tool-call index
        self._json_block: int | None = None  # the block of the forced JSON tool, streamed as content

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise malformed(self.endpoint, data) from exc
        if not isinstance(payload, dict):
            raise malformed(self.endpoint, data)
        if event == "contentBlockDelta":
            return self._delta(payload.get("contentBlockIndex"), payload.get("delta") or {})
        if event == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if not isinstance(use, dict):
                return []
            if use.get("name") == JSON_TOOL:
                self._json_block = payload.get("contentBlockIndex")
                return []
            position = self._tools[payload.get("contentBlockIndex", -1)] = len(self._tools)
            call = {"index": position, "id": use.get("toolUseId"), "type": "function",
                    "function": {"name": use.get("name"), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if event == "messageStop":
            native = payload.get("stopReason")
            self.native_finish_reason = native
            json_only = self._json_block is not None and not self._tools
            self.finish_reason = "stop" if json_only else finish_reason(native)
            return [self._chunk({}, self.finish_reason, native)]
        if event == "metadata":
            self.usage = usage_from(payload.get("usage")) or self.usage
            return []
        if event == "exception":
            status = EXCEPTION_STATUS.get(str(payload.get("exception")), 502)
            raise UpstreamError(status, str(payload.get("message") or "Provider error"),
                                provider=self.endpoint.provider.name, provider_code=payload.get("exception"))
        return []  # messageStart, contentBlockStop, and event types added after this was written

    def _delta(self, index: Any, delta: dict[str, Any]) -> list[Piece]:
        if "text" in delta:
            text = delta["text"] or ""
            self.completion_chars += len(text)
            return [self._chunk({"content": text})] if text else []
        if "toolUse" in delta and index is not None and index == self._json_block:
            fragment = (delta["toolUse"] or {}).get("input") or ""
            self.completion_chars += len(fragment)
            return [self._chunk({"content": fragment})] if fragment else []
        if "toolUse" in delta and index in self._tools:
            fragment = (delta["toolUse"] or {}).get("input") or ""
            self.completion_chars += len(fragment)
            return [self._chunk({"tool_calls": [{"index": self._tools[index], "function": {"arguments": fragment}}]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and reasoning.get("text"):
            text = reasoning["text"]
            detail = {"type": "reasoning.text", "text": text, "index": 0, "format": "unknown"}
            return [self._chunk({"reasoning": text, "reasoning_details": [detail]})]
        return []

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, native: str | None = None) -> Piece:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish,
                             "native_finish_reason": native}]}


__all__ = ["PARAMS", "ConverseStream", "build_body", "parse_response", "usage_from"]
