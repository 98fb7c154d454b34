"""Converters for the rows of the Gemini parameter table (`params.py`), and the thinking budget.

Field names follow the Gemini API reference: `GenerationConfig` (https://ai.google.dev/api/generate-content#
generationconfig), `Tool` / `FunctionDeclaration` and `ToolConfig` / `FunctionCallingConfig`
(https://ai.google.dev/api/caching#Tool), and `ThinkingConfig` (https://ai.google.dev/gemini-api/docs/thinking).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from crossroads.errors import InvalidParameter
from crossroads.providers.base import MAX_THINKING_BUDGET, effort_budget, put
from crossroads.providers.gemini.schema import to_gemini_schema
from crossroads.schema.request import Reasoning

__all__ = ["as_list", "response_format", "thinking_config", "tool_choice", "tools"]

#: Gemini's documented `thinkingBudget` ceilings per model family, longest prefix first.
BUDGET_LIMITS: Final = (("gemini-2.5-flash-lite", 24576), ("gemini-2.5-flash", 24576), ("gemini-2.5-pro", 32768))
#: The output cap assumed when neither the request nor the catalog gives one (Gemini 2.5's maximum).
DEFAULT_MAX_OUTPUT: Final = 65536


def as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def int32_seed(value: int) -> int:
    """Gemini's `seed` is an int32 (`GenerationConfig.seed`); a larger one would be refused upstream."""
    if not -(1 << 31) <= value < 1 << 31:
        raise InvalidParameter("seed", f"must be between {-(1 << 31)} and {(1 << 31) - 1} for Gemini models, "
                                       f"got {value}")
    return value


def response_format(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`json_object` → JSON mode; `json_schema` → JSON mode with `responseSchema` (Gemini's OpenAPI subset,
    which every Gemini model takes; `responseJsonSchema` exists only on newer ones)."""
    kind = value.get("type")
    if kind not in ("json_object", "json_schema"):
        return  # "text" is the default; grammars have no Gemini equivalent
    put(out, "generationConfig.responseMimeType", "application/json")
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        if isinstance(schema, Mapping):
            put(out, "generationConfig.responseSchema", to_gemini_schema(schema))


def tools(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Function tools → one `Tool` holding every `FunctionDeclaration`. A function without parameters gets
    none: Gemini rejects an OBJECT schema whose `properties` are empty."""
    declarations = []
    for tool in value:
        if tool.get("type", "function") != "function":
            continue  # server tools and custom tools have no Gemini counterpart here
        function = tool["function"]
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, Mapping):
            schema = to_gemini_schema(parameters)
            if schema.get("type") != "OBJECT" or schema.get("properties"):
                declaration["parameters"] = schema
        declarations.append(declaration)
    if declarations:
        out.setdefault("tools", []).append({"functionDeclarations": declarations})


def google_search(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`web_search_options` → the `google_search` tool ("Grounding with Google Search"), which takes no
    options: the search context size, location and domains have no Gemini counterpart."""
    out.setdefault("tools", []).append({"google_search": {}})


def tool_choice(value: Any, body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """`auto` → AUTO, `none` → NONE, `required` → ANY, a named function → ANY limited to that name."""
    if isinstance(value, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[value]
        out["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    elif value.get("type", "function") == "function":
        name = value["function"]["name"]
        out["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def thinking_config(reasoning: Reasoning, max_output: int | None, upstream_model: str) -> dict[str, Any] | None:
    """The request's reasoning → Gemini's `thinkingConfig`, or None to leave the model's default.

    `reasoning.max_tokens` is the budget as given; an effort becomes max(min(output cap × ratio, limit),
    1024), OpenRouter's published formula; reasoning turned off is budget 0. Without a budget or an effort
    the model thinks as it would by default. Thoughts are returned (`includeThoughts`) unless the request
    excludes them.
    """
    if reasoning.enabled is None:
        return None
    if reasoning.enabled is False:
        return {"thinkingBudget": 0}
    config: dict[str, Any] = {}
    if reasoning.max_tokens is not None:
        config["thinkingBudget"] = reasoning.max_tokens
    elif reasoning.effort is not None:
        limit = next((cap for prefix, cap in BUDGET_LIMITS if upstream_model.startswith(prefix)),
                     MAX_THINKING_BUDGET)
        config["thinkingBudget"] = effort_budget(reasoning.effort, max_output or DEFAULT_MAX_OUTPUT, limit)
    if not reasoning.exclude:
        config["includeThoughts"] = True
    return config or None
