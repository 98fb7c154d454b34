"""The `POST /chat/completions` request: one declarative table of every documented parameter, the message
checks, and `parse_chat_request`, which turns a decoded body into a typed `ChatRequest` (`schema.request`).

Ranges and defaults follow OpenRouter's parameter reference and its OpenAPI `ChatRequest` schema. A `null`
value means "not given". Fields the table does not know are kept apart (`ChatRequest.extra`): adapters pass
them to providers that take extra parameters (e.g. Mistral's `safe_prompt`). Reasoning settings and provider
preferences are resolved here, once, into `Reasoning` and `ProviderPreferences`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from crossroads.errors import InvalidParameter
from crossroads.schema.fields import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    Check,
    Enum,
    Integer,
    ListOf,
    MapOf,
    Number,
    NumericString,
    Obj,
    OneOf,
    String,
    any_object,
    anything,
    boolean,
    is_dict,
    is_list,
    is_number,
    is_str,
    string,
)
from crossroads.schema.request import (
    DEFAULT_PREFERENCES,
    NO_REASONING,
    ChatRequest,
    Plugin,
    ProviderPreferences,
    Reasoning,
)
from crossroads.schema.server_tools import DOMAINS, hoist_web_search, is_web_search

EFFORTS: Final = ("max", "xhigh", "high", "medium", "low", "minimal", "none")
QUANTIZATIONS: Final = ("int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32",
                        "unknown")
SORTS: Final = ("price", "throughput", "latency", "exacto")

_percentiles = Obj({"p50": Number(0), "p75": Number(0), "p90": Number(0), "p99": Number(0)}, closed=True)
_threshold = OneOf("a number or an object of percentiles", (is_number, Number(0)), (is_dict, _percentiles))
_provider_list = ListOf(String(min_length=1))

PROVIDER_PREFERENCES: Final = Obj(
    {
        "order": _provider_list,
        "only": _provider_list,
        "ignore": _provider_list,
        "allow_fallbacks": boolean,
        "require_parameters": boolean,
        "data_collection": Enum("allow", "deny"),
        "zdr": boolean,
        "enforce_distillable_text": boolean,
        "quantizations": ListOf(Enum(*QUANTIZATIONS)),
        "sort": OneOf(
            "a sort name or an object {by, partition}",
            (is_str, Enum(*SORTS)),
            (is_dict, Obj({"by": Enum(*SORTS), "partition": Enum("model", "none")}, required=["by"],
                          closed=True)),
        ),
        "max_price": Obj(
            {k: NumericString() for k in ("prompt", "completion", "request", "image", "audio")}, closed=True
        ),
        "preferred_min_throughput": _threshold,
        "preferred_max_latency": _threshold,
    },
    closed=True,
)

_function = Obj(
    {"name": String(min_length=1, max_length=64), "description": string, "parameters": any_object,
     "strict": boolean},
    required=["name"],
)


def _tool(value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise InvalidParameter(path, "expected a tool object")
    kind = value.get("type", "function")
    if kind == "function":
        if "function" not in value:
            raise InvalidParameter(f"{path}.function", "is required")
        _function(value["function"], f"{path}.function")
    elif not isinstance(kind, str):
        raise InvalidParameter(f"{path}.type", "expected a string")
    return value


def _tool_choice(value: Any, path: str) -> Any:
    if isinstance(value, str):
        choice: str = Enum("none", "auto", "required")(value, path)
        return choice
    if isinstance(value, dict):
        if value.get("type", "function") == "function":
            Obj({"name": String(min_length=1)}, required=["name"])(value.get("function"), f"{path}.function")
        return value
    raise InvalidParameter(path, "expected 'none', 'auto', 'required' or {type: 'function', function: {name}}")


def _response_format(value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise InvalidParameter(path, "expected an object such as {\"type\": \"json_object\"}")
    kind = Enum("text", "json_object", "json_schema", "grammar", "python")(value.get("type"), f"{path}.type")
    if kind == "json_schema":
        Obj(
            {"name": String(min_length=1, max_length=64), "description": string, "schema": any_object,
             "strict": boolean},
            required=["name"],
        )(value.get("json_schema"), f"{path}.json_schema")
    elif kind == "grammar":
        String()(value.get("grammar"), f"{path}.grammar")
    return value


_reasoning = Obj(
    {
        "effort": Enum(*EFFORTS),
        "max_tokens": Integer(0, INT32_MAX),
        "exclude": boolean,
        "enabled": boolean,
        "summary": Enum("auto", "concise", "detailed"),
        "context": Enum("auto", "all_turns", "current_turn"),
        "mode": Enum("standard", "pro"),
    }
)

#: Every top-level parameter, its check. `None`-valued fields are dropped before checking.
PARAMETERS: Final[dict[str, Check]] = {
    "model": String(min_length=1),
    "models": ListOf(String(min_length=1)),
    "messages": anything,  # checked by `_messages`
    "prompt": string,
    "stream": boolean,
    "stream_options": Obj({"include_usage": boolean, "include_obfuscation": boolean}),
    "max_tokens": Integer(1, INT32_MAX),
    "max_completion_tokens": Integer(1, INT32_MAX),
    "temperature": Number(0, 2),
    "top_p": Number(0, 1),
    "top_k": Integer(0, INT32_MAX),
    "frequency_penalty": Number(-2, 2),
    "presence_penalty": Number(-2, 2),
    "repetition_penalty": Number(0, 2),
    "min_p": Number(0, 1),
    "top_a": Number(0, 1),
    "seed": Integer(INT64_MIN, INT64_MAX),
    "logit_bias": MapOf(Number(-100, 100)),
    "logprobs": boolean,
    "top_logprobs": Integer(0, 20),
    "stop": OneOf("a string or an array of up to 4 strings", (is_str, string),
                  (is_list, ListOf(string, max_items=4))),
    "n": Integer(1, 128),
    "response_format": _response_format,
    "structured_outputs": boolean,
    "tools": ListOf(_tool),
    "tool_choice": _tool_choice,
    "parallel_tool_calls": boolean,
    "reasoning": _reasoning,
    "reasoning_effort": Enum(*EFFORTS),
    "include_reasoning": boolean,
    "verbosity": Enum("low", "medium", "high", "xhigh", "max"),
    "web_search_options": any_object,
    "prediction": Obj({"type": Enum("content"), "content": anything}, required=["type"]),
    "modalities": ListOf(Enum("text", "image", "audio")),
    "audio": any_object,
    "image_config": any_object,
    "provider": PROVIDER_PREFERENCES,
    "route": Enum("fallback", "sort"),
    "plugins": ListOf(Obj({"id": String(min_length=1), "enabled": boolean}, required=["id"])),  # + `PLUGINS`
    "transforms": ListOf(string),
    "usage": Obj({"include": boolean}),
    "user": String(max_length=256),
    "session_id": String(max_length=256),
    "metadata": MapOf(String(max_length=512), max_items=16, key_max=64),
    "trace": any_object,
    "prompt_cache_key": string,
    "prompt_cache_options": any_object,
    "cache_control": any_object,
    "service_tier": Enum("auto", "default", "fast", "flex", "priority", "scale"),
    "debug": Obj({"echo_upstream_body": boolean}),
    "stop_server_tools_when": anything,
    "preset": string,
    "x_search_filter": any_object,
}

#: OpenRouter's vocabulary for `supported_parameters` in `/models` and `/endpoints` (the spec's `Parameter`).
PUBLISHED_PARAMETERS: Final = frozenset({
    "temperature", "top_p", "top_k", "min_p", "top_a", "frequency_penalty", "presence_penalty",
    "repetition_penalty", "max_tokens", "max_completion_tokens", "logit_bias", "logprobs", "top_logprobs",
    "prediction", "seed", "response_format", "structured_outputs", "stop", "tools", "tool_choice",
    "parallel_tool_calls", "include_reasoning", "reasoning", "reasoning_effort", "web_search_options", "verbosity",
})

#: Fields that steer Crossroads itself and are never sent to a provider as they are.
GATEWAY_FIELDS: Final = frozenset({
    "model", "models", "messages", "prompt", "stream", "stream_options", "provider", "route", "plugins",
    "transforms", "usage", "session_id", "trace", "debug", "preset", "stop_server_tools_when",
    "include_reasoning", "reasoning", "reasoning_effort", "max_tokens", "max_completion_tokens",
})

_ROLES: Final = ("system", "developer", "user", "assistant", "tool")
_PART_TYPES: Final = ("text", "image_url", "input_audio", "file", "video_url", "input_video")


def _pdf_engine(value: Any, path: str) -> Any:
    engine = Enum("pdf-text", "cloudflare-ai", "mistral-ocr", "native")(value, path)
    if engine == "mistral-ocr":  # an OCR service, not something this gateway runs
        raise InvalidParameter(path, "the engine 'mistral-ocr' is not available on this gateway; use 'pdf-text' "
                                     "or 'native'")
    return engine


#: Plugins this gateway applies (`crossroads.plugins`), each with the check of its options; a request that
#: enables any other (`moderation`, the routers...) is refused rather than served without it.
PLUGINS: Final[Mapping[str, Obj]] = {
    "response-healing": Obj({}, closed=True),
    "context-compression": Obj({"engine": Enum("middle-out")}, closed=True),
    "file-parser": Obj({"pdf": Obj({"engine": _pdf_engine}, closed=True)}, closed=True),
    "web": Obj({"engine": String(min_length=1), "max_results": Integer(1, 25),
                "search_prompt": String(), "include_domains": DOMAINS, "exclude_domains": DOMAINS,
                "max_uses": Integer(1, 100), "mode": string, "user_location": any_object}, closed=True),
}
#: Prompt transforms this gateway applies: `middle-out` is the `context-compression` plugin.
TRANSFORMS: Final[Mapping[str, str]] = {"middle-out": "context-compression"}
#: A model id suffix that asks for a plugin (`openai/gpt-4o:online` is `plugins: [{"id": "web"}]`).
PLUGIN_VARIANTS: Final[Mapping[str, str]] = {"online": "web"}
#: The request fields that set reasoning or the output cap; they count for `provider.require_parameters`.
_REQUIRABLE_GATEWAY_FIELDS: Final = ("reasoning", "reasoning_effort", "include_reasoning", "max_tokens",
                                     "max_completion_tokens")


def parse_chat_request(body: Any, default_model: str, headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Check a decoded body and type it. `null` fields count as absent. `headers` are the client headers
    some adapter forwards."""
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    fields: dict[str, Any] = {}
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue
        check = PARAMETERS.get(key)
        if check is None:
            extra[key] = value
            continue
        checked = fields[key] = check(value, key)
        if key not in GATEWAY_FIELDS:
            params[key] = checked
    messages = fields.get("messages")
    if messages is None:
        if "prompt" not in fields:
            raise InvalidParameter("messages", "is required")
        messages = [{"role": "user", "content": fields["prompt"]}]
    prompt_chars, images, has_files, has_audio = _messages(messages)

    if fields.get("top_logprobs") is not None and not fields.get("logprobs"):
        raise InvalidParameter("top_logprobs", "requires logprobs to be true")
    tools = fields.get("tools") or ()
    tool_choice = fields.get("tool_choice")
    plugins = _plugins(fields["plugins"]) if "plugins" in fields else ()
    if any(is_web_search(tool) for tool in tools):
        tools, plugins, tool_choice = _web_search_tool(tools, plugins, tool_choice, params)
    if isinstance(tool_choice, dict) and not tools:
        raise InvalidParameter("tool_choice", "names a tool but no tools were given")
    transforms = _transforms(fields["transforms"]) if "transforms" in fields else ()

    model = fields.get("model")
    if "models" in fields:
        models = [model] if model is not None else []
        for name in fields["models"]:
            if name not in models:
                models.append(name)
        models = models or [default_model]
    else:
        models = [model or default_model]
    if transforms or any(":" in name for name in models):
        models, plugins = _plugins_asked_otherwise(models, plugins, transforms)
    provider = _resolve_preferences(fields["provider"]) if "provider" in fields else DEFAULT_PREFERENCES
    required: frozenset[str] = frozenset()
    if provider.require_parameters:
        required = frozenset([*params, *extra, *(k for k in _REQUIRABLE_GATEWAY_FIELDS if k in fields)])
    return ChatRequest(
        models=tuple(models),
        messages=messages,
        stream=bool(fields.get("stream", False)),
        max_output=fields.get("max_completion_tokens", fields.get("max_tokens")),
        params=params,
        extra=extra,
        reasoning=_resolve_reasoning(fields),
        provider=provider,
        tools=tools,
        tool_choice=tool_choice,
        response_format=fields.get("response_format"),
        plugins=plugins,
        transforms=transforms,
        user=fields.get("user"),
        session_id=fields.get("session_id"),
        metadata=fields.get("metadata") or {},
        required=required,
        prompt_chars=prompt_chars,
        images=images,
        has_files=has_files,
        has_audio=has_audio,
        headers=headers or {},
    )


def _web_search_tool(tools: Any, plugins: tuple[Plugin, ...], tool_choice: Any, params: dict[str, Any]) \
        -> tuple[list[Any], tuple[Plugin, ...], Any]:
    """Web search in `tools` is the `web` plugin (`schema.server_tools`): the tool leaves `tools` (and a
    `tool_choice` naming it, which the search answers), and the plugin joins the request's unless `plugins`
    names `web` already (its settings win)."""
    rest, plugin = hoist_web_search(tools)
    if rest:
        params["tools"] = rest
    else:
        params.pop("tools", None)
        params.pop("parallel_tool_calls", None)
    if (isinstance(tool_choice, dict) and is_web_search(tool_choice)) or (not rest and tool_choice is not None):
        tool_choice = None
        params.pop("tool_choice", None)
    if plugin is not None and all(p.id != "web" for p in plugins):
        plugins = (*plugins, plugin)
    return rest, plugins, tool_choice


def _resolve_reasoning(fields: Mapping[str, Any]) -> Reasoning:
    """The one place `reasoning`, `reasoning_effort` and `include_reasoning` are read (see `Reasoning`)."""
    given: Mapping[str, Any] = fields.get("reasoning") or {}
    effort = fields.get("reasoning_effort")
    include = fields.get("include_reasoning")
    if not given and effort is None and include is None:
        return NO_REASONING
    if effort is not None and given.get("effort") not in (None, effort):
        raise InvalidParameter("reasoning_effort", "conflicts with reasoning.effort; send one of them")
    max_tokens = given.get("max_tokens")
    if given.get("effort") is not None and max_tokens is not None:
        raise InvalidParameter("reasoning", "give either effort or max_tokens, not both")
    effort = given.get("effort") or effort
    enabled: bool | None = None
    if given.get("enabled") is False or effort == "none":
        enabled = False
    elif given or effort is not None or include is True:
        enabled = True
        if effort is None and max_tokens is None and given.get("enabled") is True:
            effort = "medium"
    return Reasoning(enabled=enabled, effort=effort, max_tokens=max_tokens,
                     exclude=bool(given.get("exclude")) or include is False)


def _resolve_preferences(given: Mapping[str, Any]) -> ProviderPreferences:
    """The one place the `provider` object is read (see `ProviderPreferences`). The spec makes every field
    nullable: null reads as absent."""
    sort = given.get("sort")
    partition = None
    if isinstance(sort, dict):
        sort, partition = sort["by"], sort.get("partition")
    return ProviderPreferences(
        order=tuple(given.get("order") or ()),
        only=tuple(given.get("only") or ()),
        ignore=tuple(given.get("ignore") or ()),
        allow_fallbacks=given.get("allow_fallbacks", True) is not False,
        require_parameters=given.get("require_parameters") is True,
        data_collection=given.get("data_collection") or "allow",
        zdr=given.get("zdr") is True,
        enforce_distillable_text=given.get("enforce_distillable_text") is True,
        quantizations=tuple(given.get("quantizations") or ()),
        sort=sort,
        sort_partition=partition,
        max_price=tuple((k, Decimal(str(v))) for k, v in (given.get("max_price") or {}).items() if v is not None),
        preferred_min_throughput=_cutoffs(given.get("preferred_min_throughput")),
        preferred_max_latency=_cutoffs(given.get("preferred_max_latency")),
    )


def _cutoffs(value: Any) -> tuple[tuple[float, float], ...]:
    """A bare number is the p50 threshold; an object names percentiles (`p50`, `p75`, `p90`, `p99`)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        return ((0.5, value),)
    return tuple((int(name[1:]) / 100, limit) for name, limit in value.items() if limit is not None)


def _transforms(given: list[str]) -> tuple[str, ...]:
    for i, name in enumerate(given):
        if name not in TRANSFORMS:
            raise InvalidParameter(f"transforms[{i}]", f"the transform {name!r} is not supported by this gateway")
    return tuple(given)


def _plugins(given: list[Any]) -> tuple[Plugin, ...]:
    plugins = []
    for i, entry in enumerate(given):
        enabled = entry.get("enabled") is not False
        check = PLUGINS.get(entry["id"])
        if check is None:
            if enabled:
                raise InvalidParameter(f"plugins[{i}].id",
                                       f"the plugin {entry['id']!r} is not supported by this gateway")
            continue
        options = {key: value for key, value in entry.items() if key not in ("id", "enabled") and value is not None}
        plugins.append(Plugin(id=entry["id"], enabled=enabled, options=check(options, f"plugins[{i}]")))
    return tuple(plugins)


def _plugins_asked_otherwise(models: list[str], plugins: tuple[Plugin, ...], transforms: tuple[str, ...]) \
        -> tuple[list[str], tuple[Plugin, ...]]:
    """Plugins asked for by a transform (`middle-out`) or a model variant (`:online`), added unless the
    `plugins` list names them already (its settings win, `enabled: false` included)."""
    wanted = [TRANSFORMS[name] for name in transforms]
    bare = []
    for name in models:
        base, sep, variant = name.rpartition(":")
        if sep and variant in PLUGIN_VARIANTS:
            wanted.append(PLUGIN_VARIANTS[variant])
        else:
            base = name
        if base not in bare:
            bare.append(base)
    named = {plugin.id for plugin in plugins}
    added = tuple(Plugin(id=plugin_id) for plugin_id in dict.fromkeys(wanted) if plugin_id not in named)
    return bare, plugins + added


def _messages(messages: Any) -> tuple[int, int, bool, bool]:
    """Check every message; return (characters of text, images, has files, has audio)."""
    if not isinstance(messages, list):
        raise InvalidParameter("messages", "expected an array of messages")
    if not messages:
        raise InvalidParameter("messages", "must contain at least one message")
    chars = images = 0
    files = audio = False
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidParameter(path, "expected a message object")
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidParameter(f"{path}.role", f"must be one of {', '.join(_ROLES)}, got {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                kind = _part(part, f"{path}.content[{j}]", role)
                if kind == "text":
                    chars += len(part["text"])
                elif kind == "image_url":
                    images += 1
                    chars += 340  # ~85 tokens, a low-detail image's cost
                elif kind == "file":
                    files = True
                elif kind == "input_audio":
                    audio = True
        elif content is None:
            if role != "assistant":
                raise InvalidParameter(f"{path}.content", "is required")
            if not message.get("tool_calls") and i != len(messages) - 1:
                raise InvalidParameter(f"{path}.content", "is required unless the message has tool_calls")
        else:
            raise InvalidParameter(f"{path}.content", "expected a string or an array of content parts")
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidParameter(f"{path}.name", "expected a string")
        if role == "assistant":
            calls = message.get("tool_calls")
            if calls is not None:
                chars += _tool_calls(calls, f"{path}.tool_calls")
            for alias in ("reasoning", "reasoning_content"):
                if message.get(alias) is not None and not isinstance(message[alias], str):
                    raise InvalidParameter(f"{path}.{alias}", "expected a string")
        elif role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise InvalidParameter(f"{path}.tool_call_id", "is required for tool messages")
    return chars, images, files, audio


def measure_messages(messages: list[Any]) -> tuple[int, int, bool, bool]:
    """(characters of text, images, has files, has audio) of messages a plugin rewrote, counted as a
    request's own are, so routing and reservations read them the same way."""
    return _messages(messages)


def _part(part: Any, path: str, role: str) -> str:
    if not isinstance(part, dict):
        raise InvalidParameter(path, "expected a content part object")
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in _PART_TYPES:
        raise InvalidParameter(f"{path}.type", f"must be one of {', '.join(_PART_TYPES)}, got {kind!r}")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise InvalidParameter(f"{path}.text", "expected a string")
        return kind
    if role not in ("user", "tool"):
        raise InvalidParameter(f"{path}.type", f"{kind} parts are only allowed in user messages")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise InvalidParameter(f"{path}.image_url.url", "expected an http(s) URL or a data: URL")
        if isinstance(image, dict) and image.get("detail") not in (None, "auto", "low", "high", "original"):
            raise InvalidParameter(f"{path}.image_url.detail", "must be one of auto, low, high, original")
    elif kind == "file":
        file = part.get("file")
        if not isinstance(file, dict) or not any(isinstance(file.get(k), str) for k in ("file_data", "file_id")):
            raise InvalidParameter(f"{path}.file", "expected {filename?, file_data | file_id}")
    elif kind == "input_audio":
        data = part.get("input_audio")
        if not isinstance(data, dict) or not isinstance(data.get("data"), str):
            raise InvalidParameter(f"{path}.input_audio.data", "expected base64 audio data")
    else:
        video = part.get("video_url")
        if not isinstance(video, dict) or not isinstance(video.get("url"), str):
            raise InvalidParameter(f"{path}.video_url.url", "expected a URL")
    return kind


def _tool_calls(calls: Any, path: str) -> int:
    if not isinstance(calls, list):
        raise InvalidParameter(path, "expected an array")
    chars = 0
    for k, call in enumerate(calls):
        where = f"{path}[{k}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            raise InvalidParameter(f"{where}.id", "is required")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidParameter(f"{where}.function.name", "is required")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            raise InvalidParameter(f"{where}.function.arguments", "expected a JSON string")
        chars += len(arguments) + len(function["name"])
    return chars


__all__ = ["EFFORTS", "GATEWAY_FIELDS", "PARAMETERS", "PLUGINS", "PLUGIN_VARIANTS", "PROVIDER_PREFERENCES",
           "PUBLISHED_PARAMETERS", "QUANTIZATIONS", "SORTS", "TRANSFORMS", "ChatRequest", "measure_messages",
           "parse_chat_request"]
