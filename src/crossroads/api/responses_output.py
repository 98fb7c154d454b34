"""The parts of a Responses API `response` object, built from the gateway's normalised (chat-shaped) reply:
output items, usage, status and the error codes — shared by the whole reply (`api/responses.py`) and the
event stream (`api/responses_stream.py`) so both say the same thing (OpenAI API reference, "The response object":
https://platform.openai.com/docs/api-reference/responses/object)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.schema.responses import ResponsesRequest, seal_reasoning
from crossroads.schema.usage import Usage

#: HTTP status → the `code` of an OpenAI-style error (what Codex and the SDKs act on: retry a
#: rate limit, stop on quota, shrink the context).
ERROR_CODES: Final[Mapping[int, str]] = {
    400: "invalid_prompt",
    401: "invalid_api_key",
    402: "insufficient_quota",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    429: "rate_limit_exceeded",
}

#: Chat finish reasons that end a response as `incomplete`, with the reason given.
INCOMPLETE: Final[Mapping[str, str]] = {"length": "max_output_tokens", "content_filter": "content_filter"}


def error_code(error: CrossroadsError) -> str:
    if error.kind == "context_length_exceeded":
        return "context_length_exceeded"
    return ERROR_CODES.get(error.code, "server_error")


def error_object(error: CrossroadsError) -> dict[str, Any]:
    """OpenAI's error envelope member: `message`, `type`, `param`, `code` (and OpenRouter's `metadata`)."""
    payload = error.payload()
    metadata = payload["metadata"]
    return {"message": payload["message"], "type": metadata["error_type"], "param": metadata.get("param"),
            "code": error_code(error), "metadata": metadata}


def usage_object(usage: Usage, charge: Charge | None) -> dict[str, Any]:
    """Responses usage: `input_tokens` include cached ones, `output_tokens` reasoning ones; plus the cost."""
    cost = charge.cost if charge is not None else None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens or 0,
            "cache_write_tokens": (usage.cache_write_tokens or 0) + (usage.cache_write_1h_tokens or 0),
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens,
        "cost": float(charge.usd) if charge is not None else 0.0,
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_input_cost": float(cost.prompt) if cost and cost.prompt is not None else 0.0,
            "upstream_inference_output_cost": float(cost.completion) if cost and cost.completion is not None
            else 0.0,
        },
    }


def response_object(request: ResponsesRequest, generation: Generation, model: str, status: str,
                    output: list[dict[str, Any]], *, finish: str | None = None, usage: dict[str, Any] | None = None,
                    error: CrossroadsError | None = None) -> dict[str, Any]:
    """The `response` object; `status` is given while it streams, else worked out from `finish`."""
    incomplete = INCOMPLETE.get(finish or "")
    if status == "completed" and incomplete is not None:
        status = "incomplete"
    return {
        "id": generation.id,
        "object": "response",
        "created_at": int(generation.started),
        # OpenRouter's spec requires it (`BaseResponsesResult`): null until the response has ended.
        "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
        "status": status,
        "model": model,
        "output": output,
        "error": {"code": error_code(error), "message": error.public_message()} if error is not None else None,
        "incomplete_details": {"reason": incomplete} if status == "incomplete" else None,
        **request.echo,
        "usage": usage,
    }


def item_id(prefix: str, generation: Generation, index: int) -> str:
    """`msg_…`, `fc_…`, `rs_…`: unique per item, derived from the generation id."""
    return f"{prefix}_{generation.id[4:]}_{index}"


def reasoning_item(generation: Generation, index: int, text: str | None,
                   details: list[dict[str, Any]] | None, status: str = "completed") -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id("rs", generation, index), "type": "reasoning",
                            "summary": [{"type": "summary_text", "text": text}] if text else []}
    if details:
        item["encrypted_content"] = seal_reasoning(details)
    if status != "completed":
        item["status"] = status
    return item


def message_item(generation: Generation, index: int, text: str, annotations: list[dict[str, Any]],
                 status: str = "completed", refusal: bool = False) -> dict[str, Any]:
    part = {"type": "refusal", "refusal": text} if refusal else \
        {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
    return {"id": item_id("msg", generation, index), "type": "message", "status": status, "role": "assistant",
            "content": [part]}


def call_item(generation: Generation, index: int, call_id: str, name: str, arguments: str,
              status: str = "completed") -> dict[str, Any]:
    return {"id": item_id("fc", generation, index), "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


def citations(given: Any) -> list[dict[str, Any]]:
    """Chat `annotations` (`{type: url_citation, url_citation: {...}}`) in the Responses form (flat)."""
    out: list[dict[str, Any]] = []
    for annotation in given or ():
        if isinstance(annotation, dict) and annotation.get("type") == "url_citation":
            out.append({"type": "url_citation", **(annotation.get("url_citation") or {})})
    return out


def opaque(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`reasoning.exclude`: only the reasoning details that show nothing (encrypted blocks, signatures), which
    a provider needs back to continue a tool loop."""
    return [detail for detail in details if not detail.get("text") and not detail.get("summary")]


def search_item(generation: Generation, index: int, query: str, status: str = "completed") -> dict[str, Any]:
    """A web search the gateway or the provider made for the `web_search` tool: a `web_search_call` item
    (`ws_…`) whose action is the search (OpenAI API reference, "Web search tool call")."""
    return {"id": item_id("ws", generation, index), "type": "web_search_call", "status": status,
            "action": {"type": "search", "query": query}}


def output_items(message: Mapping[str, Any], generation: Generation, hide_reasoning: bool, searches: int = 0,
                 query: str = "") -> list[dict[str, Any]]:
    """A whole chat message as output items: the web searches made for it first (`searches`, for `query`),
    then reasoning, then the text, then each tool call."""
    items = [search_item(generation, index, query) for index in range(searches)]
    text = None if hide_reasoning else message.get("reasoning")
    details = message.get("reasoning_details")
    if hide_reasoning and details:
        details = opaque(details)
    if text or details:
        items.append(reasoning_item(generation, len(items), text, details))
    content = message.get("content")
    if content:
        items.append(message_item(generation, len(items), content, citations(message.get("annotations"))))
    elif message.get("refusal"):
        items.append(message_item(generation, len(items), message["refusal"], [], refusal=True))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(call_item(generation, len(items), call.get("id") or "", function.get("name") or "",
                               function.get("arguments") or ""))
    return items


__all__ = ["ERROR_CODES", "call_item", "citations", "error_code", "error_object", "item_id", "message_item",
           "opaque", "output_items", "reasoning_item", "response_object", "search_item", "usage_object"]
