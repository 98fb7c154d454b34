"""Building `POST {base}/chat/completions`: the request is the client's, less the gateway's own fields.

The messages go as they are, or with only the fields OpenAI's schema has for providers that refuse others
(`Quirks.strict_messages`); the parameter table places each parameter; fields the format does not define go
to providers that take them (`Quirks.extras`, `Quirks.accepts_unknown`); the output cap goes in the field
the provider reads, and the request's reasoning becomes `reasoning_effort`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.base import UpstreamRequest, apply_params
from crossroads.providers.openai_chat.params import PARAMS, QuirksPlan
from crossroads.schema.request import ChatRequest, Reasoning

#: Message fields in OpenAI's schema; strict providers get only these.
_MESSAGE_KEYS: Final = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio"})
_PART_DROP: Final = frozenset({"cache_control", "prompt_cache_breakpoint"})
_EFFORT_FALLBACK: Final = {"max": "high", "xhigh": "high", "none": "minimal"}


def build(request: ChatRequest, endpoint: Endpoint, plan: QuirksPlan) -> UpstreamRequest:
    quirks = plan.quirks
    out: dict[str, Any] = {"model": endpoint.upstream_model}
    messages = request.messages
    out["messages"] = _clean_messages(messages) if quirks.strict_messages else messages
    apply_params(plan.rows, request.params, out)
    if quirks.accepts_unknown or quirks.extras:
        # Fields OpenAI's format does not define, for the providers that take them.
        for fields in (request.params, request.extra):
            for key, value in fields.items():
                if key not in PARAMS and (quirks.accepts_unknown or key in quirks.extras):
                    out[key] = value
    if request.max_output is not None:
        out[quirks.max_tokens_field] = request.max_output
    if "reasoning" in plan.supported:
        effort = _effort(request.reasoning)
        if effort is not None:
            out["reasoning_effort"] = effort
    if request.stream:
        out["stream"] = True
        if quirks.stream_usage:
            out["stream_options"] = {"include_usage": True}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.provider.api_key:
        headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
    for name, value in endpoint.provider.headers:
        headers[name] = value
    return UpstreamRequest(url=endpoint.provider.base_url + "/chat/completions", headers=headers,
                           body=orjson.dumps(out))


def _effort(reasoning: Reasoning) -> str | None:
    """`reasoning_effort` for the request's reasoning: "medium" unless an effort is given, "minimal" (the least
    OpenAI's efforts go) when reasoning is turned off, nothing when the request says nothing."""
    if reasoning.enabled is None:
        return None
    if reasoning.enabled is False:
        return "minimal"
    effort = reasoning.effort or "medium"
    return _EFFORT_FALLBACK.get(effort, effort)


def _clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with only OpenAI's fields; the list is copied only when something must go."""
    if all(message.keys() <= _MESSAGE_KEYS and not _has_part_extras(message) for message in messages):
        return messages
    out = []
    for message in messages:
        clean = {k: v for k, v in message.items() if k in _MESSAGE_KEYS}
        content = clean.get("content")
        if isinstance(content, list):
            clean["content"] = [
                {k: v for k, v in part.items() if k not in _PART_DROP} if isinstance(part, dict) else part
                for part in content
            ]
        out.append(clean)
    return out


def _has_part_extras(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and not part.keys().isdisjoint(_PART_DROP) for part in content
    )
