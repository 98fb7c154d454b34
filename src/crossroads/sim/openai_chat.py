"""The OpenAI Chat Completions wire format (`POST /v1/chat/completions`).

Validates requests the way the OpenAI API does (same messages, `param` and `code` in the error body),
and renders non-stream responses and SSE streams field for field like OpenAI: `chat.completion` objects,
`chat.completion.chunk` events (role chunk, content or tool-call deltas, finish chunk, optional usage chunk
with `"choices": []`, then `data: [DONE]`), logprobs, tool calls and structured output.

What the reply contains, in order of precedence:
  * tool calls, when `tools` are given, `tool_choice` is not "none", the last message is not a `tool`
    message, and either `tool_choice` is "required" / names a function, or the last user message contains
    a tool's name (case-insensitive). With `parallel_tool_calls` (default true) every tool named in the
    user message is called; arguments are generated from the tool's `parameters` schema;
  * JSON, for `response_format` `json_object` (`{"reply": <text>}`) or `json_schema` (an instance of the
    schema);
  * a quote of the trailing `tool` messages' content ("Tool result: ..."), after a tool round trip;
  * otherwise deterministic prose of `tokens` tokens (default 8-40, from the conversation hash).
Choice i of `n` uses its own seed, so choices differ. `max_completion_tokens` / `max_tokens` cap the
output (reasoning tokens included) and end it with `finish_reason: "length"`; a `stop` sequence found in
the text cuts it and ends it with "stop".

Usage: prompt tokens are the tokenizer count of every message's text (string content and text parts) plus
3 per message, plus 85 per image part; completion tokens are the output's tokens (tool-call arguments for
tool calls) plus reasoning tokens, summed over choices.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from . import reply
from .behaviour import Behaviour
from .wire import EventKind, SimError, StreamEvent

__all__ = ["OPENAI_CHAT", "ChatExchange", "OpenAIChat", "count_prompt_tokens"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "file")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")
TOKENS_PER_MESSAGE = 3
TOKENS_PER_IMAGE = 85
MAX_STOP_SEQUENCES = 4
MAX_TOP_LOGPROBS = 20

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_DONE = b"data: [DONE]\n\n"
_PAD = reply.alnum_id(0x0BF5, 64)


# ---------------------------------------------------------------------------------------------- errors


def _error_body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def _invalid(message: str, param: str | None, code: str | None) -> SimError:
    return SimError(400, _error_body(message, "invalid_request_error", param, code))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _literal(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


def _missing(param: str) -> SimError:
    return _invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> SimError:
    message = f"Invalid type for '{param}': expected {expected}, but got {_describe(value)} instead."
    return _invalid(message, param, "invalid_type")


def _unsupported(param: str, value: Any, supported: Sequence[str]) -> SimError:
    quoted = [f"'{item}'" for item in supported]
    listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)
    message = f"Invalid value: '{_literal(value)}'. Supported values are: {listed}."
    return _invalid(message, param, "invalid_value")


def _out_of_range(param: str, value: Any, bound: float, *, above: bool, integer: bool) -> SimError:
    kind = "integer" if integer else "decimal"
    where, relation = ("above maximum", "<=") if above else ("below minimum", ">=")
    message = (
        f"Invalid '{param}': {kind} {where} value. "
        f"Expected a value {relation} {_literal(bound)}, but got {_literal(value)} instead."
    )
    return _invalid(message, param, f"{kind}_{'above_max' if above else 'below_min'}_value")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Per status: (type, code, message). `{model}` and `{retry}` are filled in.
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-sim****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("invalid_request_error", "timeout", "Request timed out (simulated)."),
    409: ("invalid_request_error", None, "Conflict (simulated)."),
    413: ("invalid_request_error", None, "Request too large (simulated)."),
    422: ("invalid_request_error", None, "Unprocessable entity (simulated)."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-sim on requests per min (RPM): Limit 500, "
        "Used 500, Requested 1. Please try again in {retry}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway (simulated)."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", "timeout", "Gateway timeout (simulated)."),
}

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)

_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)

_STREAM_ERROR = _error_body(
    "The server had an error while processing your request. Sorry about that!", "server_error", None, None
)


def _seconds(value: float) -> str:
    return f"{value:g}"


# ------------------------------------------------------------------------------------------ validation


@dataclass(slots=True)
class _Params:
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


def _check_number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise _wrong_type(name, "a decimal", value)
    if value < low:
        raise _out_of_range(name, value, low, above=False, integer=False)
    if value > high:
        raise _out_of_range(name, value, high, above=True, integer=False)


def _check_integer(body: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_integer(value):
        raise _wrong_type(name, "an integer", value)
    if value < low:
        raise _out_of_range(name, value, low, above=False, integer=True)
    if high is not None and value > high:
        raise _out_of_range(name, value, high, above=True, integer=True)
    return int(value)


def _check_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _wrong_type(name, "a boolean", value)
    return value


def _check_content(content: Any, param: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(param, "one of a string or array of objects", content)
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise _missing(f"{where}.type")
        if kind not in PART_TYPES:
            raise _unsupported(f"{where}.type", kind, PART_TYPES)
        if kind == "text" and not isinstance(part.get("text"), str):
            raise (
                _missing(f"{where}.text")
                if "text" not in part
                else _wrong_type(f"{where}.text", "a string", part["text"])
            )
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _missing(f"{where}.image_url.url")


def _check_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "messages" not in body or body["messages"] is None:
        raise _missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        raise _invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            raise _unsupported(f"{where}.role", role, ROLES)
        content = message.get("content")
        if role == "assistant":
            tool_calls = message.get("tool_calls")
            if content is None and not tool_calls and not message.get("function_call"):
                raise _missing(f"{where}.content")
            if tool_calls is not None and not isinstance(tool_calls, list):
                raise _wrong_type(f"{where}.tool_calls", "an array", tool_calls)
        elif "content" not in message:
            raise _missing(f"{where}.content")
        if content is not None or role != "assistant":
            _check_content(content, f"{where}.content")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            if message.get("tool_call_id") is None:
                raise _missing(f"{where}.tool_call_id")
            raise _wrong_type(f"{where}.tool_call_id", "a string", message["tool_call_id"])
        if role == "function" and not isinstance(message.get("name"), str):
            raise _missing(f"{where}.name")
    _check_tool_pairing(messages)
    return messages


def _check_tool_calls(tool_calls: list[Any], where: str) -> list[str]:
    ids: list[str] = []
    for j, call in enumerate(tool_calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise _wrong_type(at, "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                raise _missing(f"{at}.{key}")
        if not isinstance(call["id"], str):
            raise _wrong_type(f"{at}.id", "a string", call["id"])
        function = call["function"]
        if not isinstance(function, dict):
            raise _wrong_type(f"{at}.function", "an object", function)
        for key in ("name", "arguments"):
            if not isinstance(function.get(key), str):
                raise _missing(f"{at}.function.{key}")
        ids.append(call["id"])
    return ids


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    """A `tool` message must answer a preceding assistant `tool_calls`, and every call must be answered."""
    expected: list[str] = []
    pending: list[str] = []
    owner = -1
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if owner < 0:
                raise _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                    None,
                )
            call_id = message["tool_call_id"]
            if call_id not in expected:
                raise _invalid(
                    f"Invalid parameter: tool_call_id of '{call_id}' not found in 'tool_calls' of previous message.",
                    f"messages.[{i}].tool_call_id",
                    None,
                )
            if call_id in pending:
                pending.remove(call_id)
            continue
        if pending:
            break
        owner = -1
        tool_calls = message.get("tool_calls") if role == "assistant" else None
        if tool_calls:
            expected = _check_tool_calls(tool_calls, f"messages[{i}]")
            pending = list(expected)
            owner = i
    if pending:
        raise _invalid(
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
        raise _wrong_type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _wrong_type(where, "an object", tool)
        kind = tool.get("type", "function")
        if kind not in ("function", "custom"):
            raise _unsupported(f"{where}.type", kind, ("function", "custom"))
        if kind != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _missing(f"{where}.function")
        if not isinstance(function.get("name"), str):
            raise _missing(f"{where}.function.name")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _wrong_type(f"{where}.function.parameters", "an object", parameters)
    return tools


def _check_tool_choice(body: Mapping[str, Any], tools: list[dict[str, Any]]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not tools:
        raise _invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
            None,
        )
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise _unsupported("tool_choice", choice, TOOL_CHOICES)
        return choice
    if not isinstance(choice, dict):
        raise _wrong_type("tool_choice", "one of a string or object", choice)
    if choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise _missing("tool_choice.function.name")
        if name not in _function_names(tools):
            raise _invalid(f"Tool choice '{name}' not found in 'tools' parameter.", "tool_choice", None)
    return choice


def _check_response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise _wrong_type("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind is None:
        raise _missing("response_format.type")
    if kind not in RESPONSE_FORMATS:
        raise _unsupported("response_format.type", kind, RESPONSE_FORMATS)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise _missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            raise _missing("response_format.json_schema.name")
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise _wrong_type("response_format.json_schema.schema", "an object", schema)
    return response_format


def _check_stop(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list):
        raise _wrong_type("stop", "one of a string or array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise _invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP_SEQUENCES}, "
            f"but got an array with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )
    for i, item in enumerate(stop):
        if not isinstance(item, str):
            raise _wrong_type(f"stop[{i}]", "a string", item)
    return stop


def _validate(body: Any, model: str | None) -> _Params:
    if not isinstance(body, dict):
        raise _wrong_type("body", "an object", body)
    raw_model = body.get("model")
    if raw_model is not None and not isinstance(raw_model, str):
        raise _wrong_type("model", "a string", raw_model)
    if not model:
        raise _invalid("you must provide a model parameter", "model", None)
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
        raise _invalid(
            "Invalid value for 'logprobs': must be true when 'top_logprobs' is specified.",
            "top_logprobs",
            "invalid_value",
        )
    include_usage, include_obfuscation = False, True
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not stream:
            raise _invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                "invalid_value",
            )
        if not isinstance(stream_options, dict):
            raise _wrong_type("stream_options", "an object", stream_options)
        include_usage = _check_bool(stream_options, "include_usage", False)
        include_obfuscation = _check_bool(stream_options, "include_obfuscation", True)
    tools = _check_tools(body)
    return _Params(
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
    )


# ------------------------------------------------------------------------------------------- content


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part.get("text") if part.get("type") == "text" else part.get("refusal")
            for part in content
            if isinstance(part, dict)
        ]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens: tokenizer count of each message's text, plus 3 per message and 85 per image."""
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += reply.count_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "image_url":
                    total += TOKENS_PER_IMAGE
                elif kind in ("text", "refusal"):
                    text = part.get(kind)
                    if isinstance(text, str):
                        total += reply.count_tokens(text)
    return total


def _function_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools if tool.get("type", "function") == "function"]


def _tools_to_call(params: _Params) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = [
        tool["function"] for tool in params.tools if tool.get("type", "function") == "function"
    ]
    choice = params.tool_choice
    if not functions or choice == "none" or params.messages[-1].get("role") == "tool":
        return []
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            return []
        name = choice["function"]["name"]
        return [function for function in functions if function["name"] == name][:1]
    last_user = next((m for m in reversed(params.messages) if m.get("role") == "user"), None)
    said = _text_of(last_user.get("content")).lower() if last_user else ""
    named = [function for function in functions if function["name"].lower() in said]
    chosen = named or (functions[:1] if choice == "required" else [])
    return chosen if params.parallel_tool_calls else chosen[:1]


def _tool_results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(_text_of(message.get("content")))
    return results[::-1]


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: str
    pieces: list[str]


@dataclass(slots=True)
class _Choice:
    index: int
    pieces: list[str]
    tool_calls: list[_ToolCall]
    finish_reason: str
    logprobs: list[dict[str, Any]] | None
    tokens: int

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.pieces)


def _plan_choice(
    *,
    index: int,
    seed: int,
    params: _Params,
    behaviour: Behaviour,
    budget: int | None,
    calls: list[dict[str, Any]],
) -> _Choice:
    choice_seed = reply.mix(seed, index + 1)
    length = False
    if calls:
        tool_calls: list[_ToolCall] = []
        left = budget
        for j, function in enumerate(calls):
            call_seed = reply.mix(choice_seed, j + 1)
            arguments = reply.tool_arguments(function.get("parameters"), call_seed)
            pieces = reply.split_pieces(arguments)
            if left is not None:
                if left <= 0:
                    length = True
                    break
                if len(pieces) > left:
                    pieces, length = pieces[:left], True
                    arguments = "".join(pieces)
                left -= len(pieces)
            call_id = "call_" + reply.alnum_id(reply.mix(call_seed, 0xCA11), 24)
            tool_calls.append(_ToolCall(call_id, function["name"], arguments, pieces))
        tokens = sum(reply.count_tokens(call.arguments) for call in tool_calls)
        return _Choice(index, [], tool_calls, "length" if length else "tool_calls", None, tokens)

    response_format = params.response_format or {}
    kind = response_format.get("type")
    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(choice_seed)
    results = _tool_results(params.messages)
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema") or {}
        pieces = reply.split_pieces(orjson.dumps(reply.json_instance(schema, choice_seed)).decode())
    elif kind == "json_object":
        text = "".join(reply.text_pieces(choice_seed, count))
        pieces = reply.split_pieces(orjson.dumps({"reply": text}).decode())
    elif results:
        pieces = reply.split_pieces("Tool result: " + " | ".join(results))
    else:
        pieces = list(reply.text_pieces(choice_seed, count))
    if budget is not None and len(pieces) > budget:
        pieces, length = pieces[:budget], True
    pieces, stopped = reply.apply_stop(pieces, params.stops)
    finish = "stop" if stopped or not length else "length"
    logprobs = (
        reply.token_logprobs(pieces, reply.mix(choice_seed, 0x1095), params.top_logprobs) if params.logprobs else None
    )
    return _Choice(index, pieces, [], finish, logprobs, reply.count_tokens("".join(pieces)))


# ------------------------------------------------------------------------------------------ exchange


class ChatExchange:
    """One planned Chat Completions reply: the non-stream body and the SSE events."""

    __slots__ = (
        "_choices",
        "_chunk_tokens",
        "_completion_tokens",
        "_created",
        "_fingerprint",
        "_id",
        "_logprobs",
        "_model",
        "_params",
        "_reasoning",
        "_request_id",
        "_started",
        "_usage",
    )

    def __init__(self, params: _Params, behaviour: Behaviour, serial: int) -> None:
        self._started = time.monotonic()
        self._params = params
        self._model = params.model
        seed = reply.seed_of(params.messages)
        prompt_tokens = count_prompt_tokens(params.messages)
        cap = params.max_tokens
        reasoning = behaviour.reasoning if cap is None else min(behaviour.reasoning, cap)
        budget = None if cap is None else cap - reasoning
        calls = _tools_to_call(params)
        self._choices = [
            _plan_choice(index=i, seed=seed, params=params, behaviour=behaviour, budget=budget, calls=calls)
            for i in range(params.n)
        ]
        if behaviour.reasoning > reasoning:
            for choice in self._choices:
                choice.finish_reason = "length"
        self._reasoning = reasoning
        completion_tokens = sum(choice.tokens for choice in self._choices) + reasoning * params.n
        self._completion_tokens = completion_tokens
        self._usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": min(behaviour.cached, prompt_tokens),
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning * params.n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        self._chunk_tokens = behaviour.chunk_tokens
        self._logprobs = params.logprobs
        unique = reply.mix(seed, serial, time.time_ns())
        self._id = "chatcmpl-" + reply.alnum_id(unique, 29)
        self._request_id = "req_" + f"{reply.mix(unique, 1):016x}{reply.mix(unique, 2):016x}"
        self._created = int(time.time())
        self._fingerprint = f"fp_sim{reply.seed_of(params.model.encode()) & 0xFFFFFFF:07x}"

    @property
    def stream(self) -> bool:
        return self._params.stream

    @property
    def generated_tokens(self) -> int:
        return self._completion_tokens

    @property
    def reasoning_tokens(self) -> int:
        return self._reasoning

    @property
    def usage(self) -> dict[str, Any]:
        return self._usage

    def headers(self) -> dict[str, str]:
        elapsed = int((time.monotonic() - self._started) * 1000)
        return {
            "Content-Type": _SSE if self._params.stream else _JSON,
            "x-request-id": self._request_id,
            "openai-version": "2020-10-01",
            "openai-organization": "org-sim",
            "openai-processing-ms": str(elapsed),
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "2ms",
        }

    # non-stream

    def body(self) -> bytes:
        choices = []
        for choice in self._choices:
            message: dict[str, Any] = {"role": "assistant", "content": choice.content}
            if choice.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in choice.tool_calls
                ]
            message["refusal"] = None
            message["annotations"] = []
            logprobs = {"content": choice.logprobs, "refusal": None} if choice.logprobs is not None else None
            choices.append(
                {
                    "index": choice.index,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": choice.finish_reason,
                }
            )
        return orjson.dumps(
            {
                "id": self._id,
                "object": "chat.completion",
                "created": self._created,
                "model": self._model,
                "choices": choices,
                "usage": self._usage,
                "service_tier": "default",
                "system_fingerprint": self._fingerprint,
            }
        )

    # stream

    def _chunk(self, choices: list[dict[str, Any]], serial: int, usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "service_tier": "default",
            "system_fingerprint": self._fingerprint,
            "choices": choices,
        }
        if self._params.include_usage:
            chunk["usage"] = usage
        if self._params.include_obfuscation:
            start = serial % 48
            chunk["obfuscation"] = _PAD[start : start + 2 + serial % 14]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _choice_events(self, choice: _Choice) -> Iterator[tuple[dict[str, Any], EventKind, int]]:
        index, step = choice.index, self._chunk_tokens
        if choice.tool_calls:
            for j, call in enumerate(choice.tool_calls):
                head = {
                    "index": j,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                if j == 0:
                    delta = {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
                    yield _delta(index, delta), EventKind.HEAD, 0
                else:
                    yield _delta(index, {"tool_calls": [head]}), EventKind.CONTENT, 0
                for at in range(0, len(call.pieces), step):
                    fragment = "".join(call.pieces[at : at + step])
                    delta = {"tool_calls": [{"index": j, "function": {"arguments": fragment}}]}
                    yield _delta(index, delta), EventKind.CONTENT, reply.count_tokens(fragment)
        else:
            yield _delta(index, {"role": "assistant", "content": "", "refusal": None}), EventKind.HEAD, 0
            for at in range(0, len(choice.pieces), step):
                group = choice.pieces[at : at + step]
                text = "".join(group)
                logprobs = None
                if choice.logprobs is not None:
                    logprobs = {"content": choice.logprobs[at : at + step], "refusal": None}
                yield _delta(index, {"content": text}, logprobs), EventKind.CONTENT, reply.count_tokens(text)
        yield _delta(index, {}, finish_reason=choice.finish_reason), EventKind.TAIL, 0

    def events(self) -> Iterator[StreamEvent]:
        serial = 0
        if len(self._choices) == 1:
            sequence: Iterator[tuple[dict[str, Any], EventKind, int]] = self._choice_events(self._choices[0])
        else:
            streams = [self._choice_events(choice) for choice in self._choices]
            sequence = (item for row in itertools.zip_longest(*streams) for item in row if item is not None)
        for choice, kind, tokens in sequence:
            yield StreamEvent(self._chunk([choice], serial), kind, tokens)
            serial += 1
        if self._params.include_usage:
            yield StreamEvent(self._chunk([], serial, self._usage), EventKind.TAIL)
        yield StreamEvent(_DONE, EventKind.TAIL)

    def malformed_event(self) -> bytes:
        return b'data: {"id":"' + self._id.encode() + b'","object":"chat.completion.chunk","choices":[{"delta":{\n\n'

    def error_event(self) -> bytes:
        return b"data: " + _STREAM_ERROR + b"\n\n"


def _delta(
    index: int,
    delta: dict[str, Any],
    logprobs: dict[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


# ------------------------------------------------------------------------------------------- format


class OpenAIChat:
    """`WireFormat` for OpenAI Chat Completions."""

    name = "openai-chat"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SimError(401, _error_body(_MISSING_KEY, "invalid_request_error", None, None))

    def model_of(self, request: web.Request, body: Any) -> str | None:
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        type_ = "invalid_request_error" if status < 500 else "server_error"
        return SimError(status, _error_body(message, type_, param, code))

    def invalid_json(self) -> SimError:
        return _invalid(_INVALID_JSON, None, None)

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        default_type = "invalid_request_error" if status < 500 else "server_error"
        type_, code, template = _STATUS_ERRORS.get(status, (default_type, None, f"Error {status} (simulated)."))
        retry = _seconds(retry_after) if retry_after is not None else "1"
        message = template.replace("{model}", model).replace("{retry}", retry)
        headers = {"x-request-id": "req_sim" + reply.alnum_id(reply.seed_of(message.encode()), 25)}
        if retry_after is not None:
            headers["retry-after"] = _seconds(retry_after)
        if status == 429:
            headers.update(
                {
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{retry}s",
                    "x-ratelimit-limit-tokens": "30000",
                    "x-ratelimit-remaining-tokens": "29000",
                    "x-ratelimit-reset-tokens": "2ms",
                }
            )
        return SimError(status, _error_body(message, type_, None, code), headers)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> ChatExchange:
        params = _validate(body, model)
        self._serial += 1
        return ChatExchange(params, behaviour, self._serial)


OPENAI_CHAT = OpenAIChat()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
