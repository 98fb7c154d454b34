"""What happens to each OpenAI/OpenRouter request parameter on its way to Anthropic's Messages API.

Reference: Anthropic API reference, "Messages" → "Create a Message" (request body), and the guides cited at
each row. Rows whose translation depends on the endpoint or on other parameters (the output cap, extended
thinking, structured output) name their destination here and are finished in `request.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from crossroads.providers.base import Convert, Keep, ParamTable, Rename, Unsupported

#: The forced tool that carries a JSON answer on endpoints without native structured outputs. Its input is
#: handed to the client as the message content (see `response.py` and `stream.py`).
JSON_TOOL: Final = "json_response"


def as_list(value: Any) -> list[str]:
    """`stop` takes a string or a list; `stop_sequences` only a list."""
    return [value] if isinstance(value, str) else list(value)


def tools(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """OpenAI function tools → Anthropic client tools (`name`, `description`, `input_schema`).

    `strict` and a tool's `cache_control` are kept; `request.py` drops `strict` where the model lacks
    structured outputs ("Structured outputs" guide, strict tool use). Tool types other than `function` have
    no Anthropic equivalent and are left out.
    """
    converted: list[dict[str, Any]] = []
    for tool in value:
        if tool.get("type", "function") != "function":
            continue
        function = tool["function"]
        entry: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            entry["description"] = function["description"]
        schema = function.get("parameters") or {}
        # `input_schema.type` must be "object" (Messages reference, `tools[].input_schema`).
        entry["input_schema"] = {"type": "object", **schema} if "type" not in schema else schema
        if function.get("strict") is True:
            entry["strict"] = True
        if "cache_control" in tool:
            entry["cache_control"] = tool["cache_control"]
        converted.append(entry)
    if converted:
        out.setdefault("tools", []).extend(converted)


#: Anthropic's web search server tool ("Web search tool"; the version this gateway speaks).
WEB_SEARCH_TOOL: Final = "web_search_20250305"


def web_search(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`web_search_options` → the `web_search` server tool: `max_uses`, `allowed_domains` or
    `blocked_domains` (not both), and `user_location` flattened from OpenAI's `approximate` form."""
    tool: dict[str, Any] = {"type": WEB_SEARCH_TOOL, "name": "web_search"}
    if isinstance(value.get("max_uses"), int):
        tool["max_uses"] = value["max_uses"]
    if value.get("allowed_domains"):
        tool["allowed_domains"] = list(value["allowed_domains"])
    elif value.get("blocked_domains"):
        tool["blocked_domains"] = list(value["blocked_domains"])
    location = value.get("user_location")
    if isinstance(location, Mapping):
        nested = location.get("approximate")
        place: Mapping[str, Any] = nested if isinstance(nested, Mapping) else location
        found = {k: place[k] for k in ("city", "region", "country", "timezone") if isinstance(place.get(k), str)}
        if found:
            tool["user_location"] = {"type": "approximate", **found}
    out.setdefault("tools", []).append(tool)


def tool_choice(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`auto` / `required` / `none` / a named function → `{"type": "auto" | "any" | "none" | "tool"}`."""
    if isinstance(value, dict):
        name = (value.get("function") or {}).get("name")
        choice: dict[str, Any] = {"type": "tool", "name": name} if name else {"type": "auto"}
    else:
        choice = {"type": {"auto": "auto", "required": "any", "none": "none"}[value]}
    out["tool_choice"] = {**out.get("tool_choice", {}), **choice}


def parallel_tool_calls(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`parallel_tool_calls: false` → `tool_choice.disable_parallel_tool_use: true` ("Tool use" guide,
    "Parallel tool use"). Merged with `tool_choice` whichever comes first in the body."""
    if value is False:
        out["tool_choice"] = {**out.get("tool_choice", {}), "disable_parallel_tool_use": True}


def response_format(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`json_schema` / `json_object` → `output_config.format` ("Structured outputs" guide, JSON outputs).

    `json_object` has no schema, so it becomes `{"type": "object"}`; `request.py` turns the format into a
    forced tool where the endpoint lacks native structured outputs or the format has no real schema.
    """
    kind = value.get("type")
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif kind == "json_object":
        schema = {"type": "object"}
    else:
        return
    out["output_config"] = {**out.get("output_config", {}), "format": {"type": "json_schema", "schema": schema}}


#: Every parameter of OpenRouter's chat request, and what Anthropic gets for it.
PARAMS: Final[ParamTable] = {
    # Required by Anthropic; always sent (request.output_cap), raised above a thinking budget.
    "max_tokens": Rename("max_tokens"),
    "max_completion_tokens": Rename("max_tokens"),
    # Sampling: all dropped while extended thinking is on; `top_p` also when `temperature` is given
    # (Anthropic: "alter either temperature or top_p, not both"; newer models reject both together).
    "temperature": Keep(),
    "top_p": Keep(),
    "top_k": Keep(),
    "stop": Rename("stop_sequences", convert=as_list),
    "user": Rename("metadata.user_id"),
    "tools": Convert(tools, needs="tools"),
    "tool_choice": Convert(tool_choice, needs="tools"),
    "parallel_tool_calls": Convert(parallel_tool_calls, needs="tools"),
    # Every Claude model with tools can answer in JSON through a forced tool; native where the catalog
    # marks the endpoint `structured_outputs`.
    "response_format": Convert(response_format, needs="tools"),
    # → `thinking: {"type": "enabled", "budget_tokens": N}` (request.thinking).
    "reasoning": Rename("thinking", needs="reasoning"),
    "reasoning_effort": Rename("thinking", needs="reasoning"),
    "include_reasoning": Rename("thinking", needs="reasoning"),
    # Top-level automatic caching; content-part `cache_control` travels with the messages.
    "cache_control": Keep(),
    # No Anthropic equivalent: dropped, as OpenRouter drops them.
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
    "verbosity": Unsupported(),
    "prediction": Unsupported(),
    # The `web_search` server tool, where the catalog marks the endpoint `web_search`.
    "web_search_options": Convert(web_search, needs="web_search"),
    "modalities": Unsupported(),
    "audio": Unsupported(),
    "service_tier": Unsupported(),
    "prompt_cache_key": Unsupported(),
    "metadata": Unsupported(),
}
