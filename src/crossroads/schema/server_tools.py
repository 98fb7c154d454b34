"""Web search asked for as a tool, read into the `web` plugin that serves it.

Three spellings reach the gateway:

    {"type": "openrouter:web_search", "parameters": {...}}      OpenRouter's server tool (chat, `/responses`);
                                                                 `parameters` is the spec's `WebSearchConfig`
    {"type": "web_search" | "web_search_preview" | ...}          OpenAI's shorthand (the spec's
                                                                 `ChatWebSearchShorthand`), which OpenRouter
                                                                 hoists to `openrouter:web_search`; its settings
                                                                 sit beside `type` or in `parameters`, and
                                                                 OpenAI's own `filters.allowed_domains` is read too
    {"type": "web_search_20250305", "name": "web_search", ...}   Anthropic's server tool, on `/messages`
                                                                 (`max_uses`, `allowed_domains`, `blocked_domains`,
                                                                 `user_location`)

Each becomes a `Plugin("web", tool=True)` whose options are the plugin's own (`engine`, `max_results`,
`include_domains`, ...), so the plugin's machinery searches — natively where the serving endpoint can
(`engine` auto or native), by the search backend elsewhere — and the faces render the search the way each
API shows a server tool's call (`tool=True`). `engine: "auto"` is the plugin's default (no engine named).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from crossroads.errors import InvalidParameter
from crossroads.schema.fields import INT32_MAX, Enum, Integer, ListOf, Obj, String, any_object, string
from crossroads.schema.request import Plugin

OPENROUTER_WEB_SEARCH: Final = "openrouter:web_search"
#: OpenAI's web search tool types, hoisted to `openrouter:web_search` (the spec's `ChatWebSearchShorthand`).
SHORTHANDS: Final = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11",
                               "web_search_2025_08_26"})
WEB_SEARCH_TOOLS: Final = frozenset({OPENROUTER_WEB_SEARCH, *SHORTHANDS})
#: Anthropic's web search server tool (Messages API, "Web search tool").
ANTHROPIC_WEB_SEARCH: Final = "web_search_20250305"
AUTO: Final = "auto"
#: The `web` plugin's results per search when none is asked for.
DEFAULT_RESULTS: Final = 5
#: A list of domains, as web search settings take them.
DOMAINS: Final = ListOf(String(min_length=1))
_location = Obj({"type": Enum("approximate"), "city": string, "country": string, "region": string,
                 "timezone": string})
#: The spec's `WebSearchConfig`.
WEB_SEARCH_CONFIG: Final = Obj({
    "engine": String(min_length=1),
    "max_results": Integer(1, 25),
    "max_total_results": Integer(1, INT32_MAX),
    "max_uses": Integer(1, 100),
    "allowed_domains": DOMAINS,
    "excluded_domains": DOMAINS,
    "search_context_size": Enum("low", "medium", "high"),
    "max_characters": Integer(1, INT32_MAX),
    "mode": string,
    "user_location": _location,
}, closed=True)
_ANTHROPIC_CONFIG: Final = Obj({"max_uses": Integer(1, 100), "allowed_domains": DOMAINS,
                                "blocked_domains": DOMAINS, "user_location": _location})


def is_web_search(tool: Any) -> bool:
    return isinstance(tool, Mapping) and tool.get("type") in WEB_SEARCH_TOOLS


def hoist_web_search(tools: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], Plugin | None]:
    """The tools other than web search, and the `web` plugin the web search tool asks for (None without one).
    Two web search tools are one search: the first one's settings count."""
    rest: list[Mapping[str, Any]] = []
    plugin = None
    for i, tool in enumerate(tools):
        if not is_web_search(tool):
            rest.append(tool)
        elif plugin is None:
            plugin = Plugin(id="web", tool=True, options=_options(tool, f"tools[{i}]"))
    return rest, plugin


def anthropic_web_search(tool: Mapping[str, Any], path: str) -> Plugin:
    """Anthropic's `web_search_20250305` tool as the `web` plugin."""
    config = _ANTHROPIC_CONFIG(dict(tool), path)
    if config.get("allowed_domains") and config.get("blocked_domains"):
        raise InvalidParameter(path, "give allowed_domains or blocked_domains, not both")
    return Plugin(id="web", tool=True, options=_plugin_options({
        "max_uses": config.get("max_uses"), "allowed_domains": config.get("allowed_domains"),
        "excluded_domains": config.get("blocked_domains"), "user_location": config.get("user_location")}))


def _options(tool: Mapping[str, Any], path: str) -> dict[str, Any]:
    given = tool.get("parameters")
    if given is not None:
        config = WEB_SEARCH_CONFIG(dict(any_object(given, f"{path}.parameters")), f"{path}.parameters")
        where = f"{path}.parameters"
    else:
        config = {}
        where = path
    if tool["type"] in SHORTHANDS:  # the shorthand's settings may sit beside `type`
        beside = {key: value for key, value in tool.items() if key in WEB_SEARCH_CONFIG.fields}
        config = {**WEB_SEARCH_CONFIG(beside, path), **config}
        filters = tool.get("filters")
        if isinstance(filters, Mapping) and filters.get("allowed_domains") is not None:
            allowed = DOMAINS(filters["allowed_domains"], f"{path}.filters.allowed_domains")
            config.setdefault("allowed_domains", allowed)
    if config.get("allowed_domains") and config.get("excluded_domains"):
        raise InvalidParameter(where, "give allowed_domains or excluded_domains, not both")
    return _plugin_options(config)


def _plugin_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """`WebSearchConfig` in the `web` plugin's terms (`plugins/web.py`)."""
    options: dict[str, Any] = {}
    engine = config.get("engine")
    if engine is not None and engine != AUTO:
        options["engine"] = engine
    count = config.get("max_results")
    total = config.get("max_total_results")
    if total is not None:  # one search is made: the total bounds its results too
        count = min(count or DEFAULT_RESULTS, total)
    if count is not None:
        options["max_results"] = count
    for ours, theirs in (("include_domains", "allowed_domains"), ("exclude_domains", "excluded_domains")):
        if config.get(theirs):
            options[ours] = list(config[theirs])
    for name in ("max_uses", "search_context_size"):
        if config.get(name) is not None:
            options[name] = config[name]
    location = config.get("user_location")
    if location:  # flat here and in Anthropic's tool; nested in `web_search_options`, which adapters translate
        options["user_location"] = {"type": "approximate",
                                    "approximate": {k: v for k, v in location.items() if k != "type" and v}}
    return options


__all__ = ["ANTHROPIC_WEB_SEARCH", "DEFAULT_RESULTS", "DOMAINS", "OPENROUTER_WEB_SEARCH", "SHORTHANDS",
           "WEB_SEARCH_CONFIG", "WEB_SEARCH_TOOLS", "anthropic_web_search", "hoist_web_search", "is_web_search"]
