"""Chat Completions request checks, in OpenAI's words: the same messages, `param` and `code` as the API
sends for a request it refuses. `check_request` turns a valid body into `Params`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import is_integer, is_number
from ..tools import pair_answers
from .errors import invalid, missing, out_of_range, unsupported, wrong_type

__all__ = ["Params", "check_request"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "file")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
MAX_STOP_SEQUENCES = 4
MAX_TOP_LOGPROBS = 20
SEARCH_CONTEXT_SIZES = ("low", "medium", "high")


@dataclass(slots=True)
class Params:
    """A valid request, as the plan and the rendering need it."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    include_obfuscation: bool = True
    n: int = 1
    max_tokens: int | None = None
    stops: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    #: A search model (`gpt-4o-search-preview`...), which searches the web before every answer.
    web_search: bool = False


def _check_number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not is_number(value):
        raise wrong_type(name, "a decimal", value)
    if value < low:
        raise out_of_range(name, value, low, above=False, integer=False)
    if value > high:
        raise out_of_range(name, value, high, above=True, integer=False)


def _check_integer(body: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not is_integer(value):
        raise wrong_type(name, "an integer", value)
    if value < low:
        raise out_of_range(name, value, low, above=False, integer=True)
    if high is not None and value > high:
        raise out_of_range(name, value, high, above=True, integer=True)
    return int(value)


def _check_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise wrong_type(name, "a boolean", value)
    return value


def _check_content(content: Any, param: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise wrong_type(param, "one of a string or array of objects", content)
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise missing(f"{where}.type")
        if kind not in PART_TYPES:
            raise unsupported(f"{where}.type", kind, PART_TYPES)
        if kind == "text" and not isinstance(part.get("text"), str):
            raise (
                missing(f"{where}.text")
                if "text" not in part
                else wrong_type(f"{where}.text", "a string", part["text"])
            )
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise missing(f"{where}.image_url.url")


def _check_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "messages" not in body or body["messages"] is None:
        raise missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"{where}.role")
        if role not in ROLES:
            raise unsupported(f"{where}.role", role, ROLES)
        content = message.get("content")
        if role == "assistant":
            tool_calls = message.get("tool_calls")
            if content is None and not tool_calls and not message.get("function_call"):
                raise missing(f"{where}.content")
            if tool_calls is not None and not isinstance(tool_calls, list):
                raise wrong_type(f"{where}.tool_calls", "an array", tool_calls)
        elif "content" not in message:
            raise missing(f"{where}.content")
        if content is not None or role != "assistant":
            _check_content(content, f"{where}.content")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            if message.get("tool_call_id") is None:
                raise missing(f"{where}.tool_call_id")
            raise wrong_type(f"{where}.tool_call_id", "a string", message["tool_call_id"])
        if role == "function" and not isinstance(message.get("name"), str):
            raise missing(f"{where}.name")
    _check_tool_pairing(messages)
    return messages


def _check_tool_calls(tool_calls: list[Any], where: str) -> list[str]:
    ids: list[str] = []
    for j, call in enumerate(tool_calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise wrong_type(at, "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                raise missing(f"{at}.{key}")
        if not isinstance(call["id"], str):
            raise wrong_type(f"{at}.id", "a string", call["id"])
        function = call["function"]
        if not isinstance(function, dict):
            raise wrong_type(f"{at}.function", "an object", function)
        for key in ("name", "arguments"):
            if not isinstance(function.get(key), str):
                raise missing(f"{at}.function.{key}")
        ids.append(call["id"])
    return ids


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    """A `tool` message must answer the assistant `tool_calls` right before it (or before the `tool` messages
    answering them), and every call must be answered before the next other message."""
    i = 0
    while i < len(messages):
        if messages[i]["role"] == "tool":
            raise invalid(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                "message with 'tool_calls'.",
                f"messages.[{i}].role",
                None,
            )
        owner, i = i, i + 1
        tool_calls = messages[owner].get("tool_calls") if messages[owner]["role"] == "assistant" else None
        if not tool_calls:
            continue
        calls = _check_tool_calls(tool_calls, f"messages[{owner}]")
        while i < len(messages) and messages[i]["role"] == "tool":
            i += 1
        answers = [message["tool_call_id"] for message in messages[owner + 1 : i]]
        unknown, pending = pair_answers(calls, answers)
        if unknown is not None:
            raise invalid(
                f"Invalid parameter: tool_call_id of '{answers[unknown]}' not found in 'tool_calls' of previous "
                "message.",
                f"messages.[{owner + 1 + unknown}].tool_call_id",
                None,
            )
        if pending:
            raise invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"messages.[{owner}].role",
                None,
            )


def _check_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise wrong_type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise wrong_type(where, "an object", tool)
        kind = tool.get("type", "function")
        if kind not in ("function", "custom"):
            raise unsupported(f"{where}.type", kind, ("function", "custom"))
        if kind != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            raise missing(f"{where}.function")
        if not isinstance(function.get("name"), str):
            raise missing(f"{where}.function.name")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise wrong_type(f"{where}.function.parameters", "an object", parameters)
    return tools


def _function_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools if tool.get("type", "function") == "function"]


def _check_tool_choice(body: Mapping[str, Any], tools: list[dict[str, Any]]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not tools:
        raise invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
            None,
        )
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise unsupported("tool_choice", choice, TOOL_CHOICES)
        return choice
    if not isinstance(choice, dict):
        raise wrong_type("tool_choice", "one of a string or object", choice)
    if choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise missing("tool_choice.function.name")
        if name not in _function_names(tools):
            raise invalid(f"Tool choice '{name}' not found in 'tools' parameter.", "tool_choice", None)
    return choice


def _check_response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise wrong_type("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind is None:
        raise missing("response_format.type")
    if kind not in RESPONSE_FORMATS:
        raise unsupported("response_format.type", kind, RESPONSE_FORMATS)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            raise missing("response_format.json_schema.name")
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise wrong_type("response_format.json_schema.schema", "an object", schema)
    return response_format


def _check_stop(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list):
        raise wrong_type("stop", "one of a string or array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP_SEQUENCES}, "
            f"but got an array with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )
    for i, item in enumerate(stop):
        if not isinstance(item, str):
            raise wrong_type(f"stop[{i}]", "a string", item)
    return stop


def check_request(body: Any, model: str | None) -> Params:
    if not isinstance(body, dict):
        raise wrong_type("body", "an object", body)
    raw_model = body.get("model")
    if raw_model is not None and not isinstance(raw_model, str):
        raise wrong_type("model", "a string", raw_model)
    if not model:
        raise invalid("you must provide a model parameter", "model", None)
    messages = _check_messages(body)
    stream = _check_bool(body, "stream", False)
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    n = _check_integer(body, "n", 1, 128) or 1
    max_tokens = _check_integer(body, "max_tokens", 1)
    max_completion_tokens = _check_integer(body, "max_completion_tokens", 1)
    _check_integer(body, "seed", -(2**63))
    logprobs = _check_bool(body, "logprobs", False)
    top_logprobs = _check_integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top_logprobs is not None and not logprobs:
        raise invalid(
            "Invalid value for 'logprobs': must be true when 'top_logprobs' is specified.",
            "top_logprobs",
            "invalid_value",
        )
    include_usage, include_obfuscation = False, True
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not stream:
            raise invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                "invalid_value",
            )
        if not isinstance(stream_options, dict):
            raise wrong_type("stream_options", "an object", stream_options)
        include_usage = _check_bool(stream_options, "include_usage", False)
        include_obfuscation = _check_bool(stream_options, "include_obfuscation", True)
    tools = _check_tools(body)
    web_search = _check_web_search(body, model)
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise unsupported("reasoning_effort", effort, REASONING_EFFORTS)
    return Params(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        include_obfuscation=include_obfuscation,
        n=n,
        max_tokens=max_completion_tokens if max_completion_tokens is not None else max_tokens,
        stops=_check_stop(body),
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        tools=tools,
        tool_choice=_check_tool_choice(body, tools),
        parallel_tool_calls=_check_bool(body, "parallel_tool_calls", True),
        response_format=_check_response_format(body),
        reasoning_effort=effort,
        web_search=web_search,
    )


def _check_web_search(body: Mapping[str, Any], model: str) -> bool:
    """Whether the model is a search model ("Web search" guide, Chat Completions: the `-search-` models);
    `web_search_options` (`search_context_size`, `user_location`) is refused by any other."""
    searches = "-search-" in model
    options = body.get("web_search_options")
    if options is None:
        return searches
    if not isinstance(options, dict):
        raise wrong_type("web_search_options", "an object", options)
    if not searches:
        raise invalid("Web search options not supported with this model.", "web_search_options", None)
    size = options.get("search_context_size")
    if size is not None and size not in SEARCH_CONTEXT_SIZES:
        raise unsupported("web_search_options.search_context_size", size, SEARCH_CONTEXT_SIZES)
    for key in options:
        if key not in ("search_context_size", "user_location"):
            raise invalid(f"Unrecognized request argument supplied: web_search_options.{key}",
                          f"web_search_options.{key}", None)
    return True
