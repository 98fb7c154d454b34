"""Building `POST {base}/v1/messages`: the parameter table applied, then the rules that tie parameters together.

Anthropic API reference, "Messages" → "Create a Message" (headers `x-api-key`, `anthropic-version`; body),
and the guides cited below. After `params.PARAMS` has placed each parameter:

  * `max_tokens` is always sent: the request's, else the endpoint's `max_completion_tokens`, else
    `DEFAULT_MAX_TOKENS`.
  * Extended thinking ("Extended thinking" guide): the request's `Reasoning` (`reasoning`,
    `reasoning_effort` and `include_reasoning`, reconciled by the parser) becomes
    `thinking: {"type": "enabled", "budget_tokens": N}` with OpenRouter's mapping, budget =
    max(min(max_tokens × ratio, 128000), 1024) for an effort, or `reasoning.max_tokens` (at least 1024).
    `max_tokens` must exceed the budget, so it is raised (to budget + the answer's own allowance, within the
    endpoint's cap). Excluded reasoning asks Anthropic to omit the thinking text (`display: "omitted"`, the
    signature still comes back). Thinking is not requested when a tool is forced (Anthropic allows only
    `auto` / `none` tool choice with thinking) or when the conversation is inside a tool loop whose
    assistant turn carries no thinking block (Anthropic rejects that). With thinking on, `temperature`,
    `top_p` and `top_k` are dropped, as Anthropic forbids changing them.
  * Structured output ("Structured outputs" guide): endpoints the catalog marks `structured_outputs` get
    `output_config.format` natively; elsewhere (and for `json_object`, which has no schema) the format
    becomes a forced tool, `params.JSON_TOOL`, whose input is the answer.
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
    MAX_THINKING_BUDGET,
    MIN_THINKING_BUDGET,
    Plan,
    UpstreamRequest,
    apply_params,
    effort_budget,
)
from crossroads.schema.request import ChatRequest, Reasoning

API_VERSION: Final = "2023-06-01"
WIRE_FORMAT: Final = "anthropic_messages"
#: Output cap when neither the request nor the catalog gives one.
DEFAULT_MAX_TOKENS: Final = 4096
#: OpenRouter's share of `max_tokens` given to thinking, per effort.
_SAMPLING: Final = ("temperature", "top_p", "top_k")


#: Fields of a `/messages` body that steer the gateway (OpenRouter's extras) and never reach the provider.
_GATEWAY_FIELDS: Final = frozenset({"model", "models", "provider", "session_id"})


def build(request: ChatRequest, endpoint: Endpoint, plan: Plan) -> UpstreamRequest:
    native = request.native
    if native is not None and native.wire_format == WIRE_FORMAT:
        # The client spoke this API: its body goes as written (thinking signatures, `cache_control` on any
        # block, server tools, betas), only the model named as this endpoint knows it.
        body = {key: value for key, value in native.body.items() if key not in _GATEWAY_FIELDS}
        body["model"] = endpoint.upstream_model
        return _upstream(body, request, endpoint)
    try:
        conversation = translate(request.messages)
    except UnsupportedContent as exc:
        raise UpstreamError(400, str(exc), provider=endpoint.provider.name) from exc
    out: dict[str, Any] = {"model": endpoint.upstream_model}
    if conversation.system is not None:
        out["system"] = conversation.system
    out["messages"] = conversation.messages
    apply_params(plan.rows, request.params, out)  # fields no row names are not sent
    _structured_output(out, request, endpoint)
    _finish_tool_choice(out)
    if "tools" in out and not endpoint.features.structured_outputs:
        for tool in out["tools"]:
            tool.pop("strict", None)
    max_tokens = request.max_output or endpoint.max_completion_tokens or DEFAULT_MAX_TOKENS
    wanted = thinking_wanted(request.reasoning) if "reasoning" in plan.supported else None
    if wanted is not None and not _thinking_allowed(out, conversation.ends_tool_loop_without_thinking()):
        wanted = None
    if wanted is not None:
        budget, max_tokens = thinking_budget(wanted[0], request.max_output, endpoint.max_completion_tokens)
        if budget is not None:
            thinking: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
            if wanted[1]:
                thinking["display"] = "omitted"
            out["thinking"] = thinking
            for name in _SAMPLING:
                out.pop(name, None)
    if "temperature" in out:
        out.pop("top_p", None)
    out["max_tokens"] = max_tokens
    if request.stream:
        out["stream"] = True
    return _upstream(out, request, endpoint)


#: What "Count Message tokens" (`POST /v1/messages/count_tokens`) takes of a Messages request.
COUNT_FIELDS: Final = frozenset({"messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
                                 "context_management", "output_config", "output_format"})


def build_count(request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest | None:
    """The token count request for a request in this API's own form; None for any other."""
    native = request.native
    if native is None or native.wire_format != WIRE_FORMAT:
        return None
    body = {key: value for key, value in native.body.items() if key in COUNT_FIELDS}
    body["model"] = endpoint.upstream_model
    counted = _upstream(body, request, endpoint)
    return UpstreamRequest(url=counted.url + "/count_tokens", headers=counted.headers, body=counted.body)


def _upstream(out: dict[str, Any], request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
    headers = {"content-type": "application/json", "accept": "application/json",
               "anthropic-version": API_VERSION}
    if endpoint.provider.api_key:
        headers["x-api-key"] = endpoint.provider.api_key
    beta = request.headers.get("x-anthropic-beta")
    if beta:
        headers["anthropic-beta"] = beta
    for name, value in endpoint.provider.headers:
        headers[name] = value
    return UpstreamRequest(url=endpoint.provider.base_url + "/v1/messages", headers=headers,
                           body=orjson.dumps(out))


def _structured_output(out: dict[str, Any], request: ChatRequest, endpoint: Endpoint) -> None:
    config = out.get("output_config")
    if not config or "format" not in config or request.response_format is None:
        return
    if endpoint.features.structured_outputs and request.response_format.get("type") == "json_schema":
        return
    schema = config.pop("format")["schema"]
    if not config:
        del out["output_config"]
    out.setdefault("tools", []).append({
        "name": JSON_TOOL,
        "description": "Give the final answer as a JSON value matching the input schema.",
        "input_schema": schema,
    })
    choice = out.get("tool_choice", {})
    if len(out["tools"]) == 1 or choice.get("type") == "none":
        out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    elif choice.get("type", "auto") == "auto":
        # The client's own tools stay callable; a plain answer must come through the JSON tool.
        out["tool_choice"] = {**choice, "type": "any"}


def _finish_tool_choice(out: dict[str, Any]) -> None:
    choice = out.get("tool_choice")
    if choice is None:
        return
    if "tools" not in out:
        del out["tool_choice"]  # Anthropic takes tool_choice only with tools
        return
    choice.setdefault("type", "auto")
    if choice["type"] == "none":
        choice.pop("disable_parallel_tool_use", None)


def thinking_wanted(reasoning: Reasoning) -> tuple[int | str, bool] | None:
    """(an explicit budget or an effort, whether the thinking is excluded from the reply), or None when the
    request asks for no reasoning (a budget of 0 included)."""
    if not reasoning.enabled:
        return None
    if reasoning.max_tokens is not None:
        return (reasoning.max_tokens, reasoning.exclude) if reasoning.max_tokens > 0 else None
    return reasoning.effort or "medium", reasoning.exclude


def thinking_budget(wanted: int | str, requested: int | None, cap: int | None) -> tuple[int | None, int]:
    """(budget_tokens, max_tokens) for a budget or an effort; budget None when no budget of at least 1024
    tokens fits under the endpoint's cap."""
    max_tokens = requested or cap or DEFAULT_MAX_TOKENS
    if isinstance(wanted, int):
        budget = max(wanted, MIN_THINKING_BUDGET)
    else:
        budget = effort_budget(wanted, max_tokens, MAX_THINKING_BUDGET)
    if budget >= max_tokens:
        max_tokens = budget + (requested or DEFAULT_MAX_TOKENS)
        if cap is not None and max_tokens > cap:
            max_tokens = cap
            budget = min(budget, cap - 1)
    if budget < MIN_THINKING_BUDGET:
        return None, max_tokens
    return budget, max_tokens


def _thinking_allowed(out: Mapping[str, Any], missing_blocks: bool) -> bool:
    choice = out.get("tool_choice") or {}
    return choice.get("type") not in ("any", "tool") and not missing_blocks
