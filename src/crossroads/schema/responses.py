"""The `POST /responses` request (OpenAI's Responses API, stateless as on OpenRouter): its declarative table
of fields, the input items, and `parse_responses_request`, which reads a decoded body into the typed
`ResponsesRequest` — a `ChatRequest` that also keeps what a Responses reply echoes.

The items are turned into chat messages once, here (OpenAI API reference, "Responses":
https://platform.openai.com/docs/api-reference/responses): `instructions` become a leading system message,
consecutive `function_call` items one assistant message with `tool_calls`, each `function_call_output` a
`tool` message, and `reasoning` items the `reasoning_details`
of the assistant turn they precede. The chat checks of `schema.chat` then run on the result, so every
routing field (`models`, `provider`, ...) means what it means for chat completions.

Reasoning a provider returns goes back to the client as one opaque `encrypted_content` string
(`seal_reasoning`) holding the chat `reasoning_details` byte for byte — signatures included — so a client
that replays it (Codex does, with `include: ["reasoning.encrypted_content"]`) continues a tool loop with the
same provider. Anything else in `encrypted_content` (e.g. from OpenAI itself) is passed on as
`reasoning.encrypted` data.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

import orjson
from msgspec import structs

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import EFFORTS, parse_chat_request
from crossroads.schema.fields import (
    INT32_MAX,
    Check,
    Enum,
    Integer,
    ListOf,
    Obj,
    String,
    any_object,
    anything,
    boolean,
    string,
)
from crossroads.schema.request import ChatRequest
from crossroads.schema.server_tools import is_web_search

#: Prefix of the `encrypted_content` this gateway writes (see `seal_reasoning`).
SEAL: Final = "crx1."

_text_format = Obj(
    {"type": Enum("text", "json_object", "json_schema"), "name": String(min_length=1, max_length=64),
     "schema": any_object, "strict": boolean, "description": string},
    required=["type"],
)

#: Fields read here, each with its check; `None` values count as absent. Routing fields (`models`,
#: `provider`, `plugins`...) go to the chat checks as they are.
FIELDS: Final[dict[str, Check]] = {
    "input": anything,  # checked item by item
    "instructions": string,
    "tools": ListOf(any_object),
    "tool_choice": anything,
    "max_output_tokens": Integer(1, INT32_MAX),
    "reasoning": Obj({"effort": Enum(*EFFORTS), "summary": Enum("auto", "concise", "detailed"),
                      "generate_summary": Enum("auto", "concise", "detailed"), "max_tokens": Integer(0, INT32_MAX),
                      "enabled": boolean, "exclude": boolean}),
    "text": Obj({"format": _text_format, "verbosity": Enum("low", "medium", "high", "xhigh", "max")}),
    "include": ListOf(string),
    "store": boolean,
    "previous_response_id": string,
    "conversation": anything,
    "background": boolean,
    "prompt": anything,
    "truncation": Enum("auto", "disabled"),
    "top_logprobs": Integer(0, 20),
    "max_tool_calls": Integer(1, INT32_MAX),
    "safety_identifier": String(max_length=256),
    "client_metadata": anything,  # Codex's own bookkeeping; never sent upstream
}

#: Chat fields a Responses body may carry under the same name and meaning.
CHAT_FIELDS: Final = frozenset({
    "model", "models", "provider", "route", "plugins", "transforms", "session_id", "trace", "debug", "user",
    "metadata", "stream", "temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty",
    "repetition_penalty", "min_p", "top_a", "seed", "stop", "parallel_tool_calls", "prompt_cache_key",
    "service_tier", "modalities", "image_config", "cache_control", "stream_options", "usage",
})

_STATELESS: Final = "this gateway is stateless: send the whole conversation in `input` (store must be false)"


class ResponsesRequest(ChatRequest, frozen=True):
    """A checked Responses request: the chat request it means, and the settings its reply echoes."""

    #: The request settings a `response` object repeats (`instructions`, `tools`, `text`, ...).
    echo: Mapping[str, Any] = {}


def parse_responses_request(body: Any, default_model: str, headers: Mapping[str, str] | None = None) \
        -> ResponsesRequest:
    if not isinstance(body, dict):
        raise InvalidParameter("body", "expected a JSON object")
    chat: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue
        check = FIELDS.get(key)
        if check is not None:
            fields[key] = check(value, key)
        else:  # chat fields, and unknown ones (kept apart as extras, as for chat completions)
            chat[key] = value
    for key in ("previous_response_id", "conversation"):
        if key in fields:
            raise InvalidParameter(key, _STATELESS)
    if fields.get("store") is True:
        raise InvalidParameter("store", _STATELESS)
    if fields.get("background") is True:
        raise InvalidParameter("background", "background responses need stored state; this gateway is stateless")
    if "prompt" in fields:
        raise InvalidParameter("prompt", "stored prompt templates are not available on this gateway")
    if "input" not in fields:
        raise InvalidParameter("input", "is required")

    messages: list[dict[str, Any]] = []
    if "instructions" in fields:
        messages.append({"role": "system", "content": fields["instructions"]})
    messages += _messages(fields["input"])
    chat["messages"] = messages
    if "tools" in fields:
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(fields["tools"])]
    if "tool_choice" in fields:
        chat["tool_choice"] = _tool_choice(fields["tool_choice"])
    if "max_output_tokens" in fields:
        chat["max_tokens"] = fields["max_output_tokens"]
    if "reasoning" in fields:
        reasoning = dict(fields["reasoning"])
        summary = reasoning.pop("generate_summary", None)
        if summary is not None:
            reasoning.setdefault("summary", summary)
        chat["reasoning"] = reasoning
    text = fields.get("text") or {}
    if "format" in text:
        chat["response_format"] = _response_format(text["format"])
    if "verbosity" in text:
        chat["verbosity"] = text["verbosity"]
    if "top_logprobs" in fields:
        chat["logprobs"] = True
        chat["top_logprobs"] = fields["top_logprobs"]
    parsed = parse_chat_request(chat, default_model, headers)
    echo = {
        "instructions": fields.get("instructions"),
        "tools": fields.get("tools", []),
        "tool_choice": fields.get("tool_choice", "auto"),
        "parallel_tool_calls": chat.get("parallel_tool_calls", True),
        "max_output_tokens": fields.get("max_output_tokens"),
        "temperature": chat.get("temperature"),
        "top_p": chat.get("top_p"),
        "presence_penalty": chat.get("presence_penalty"),
        "frequency_penalty": chat.get("frequency_penalty"),
        "text": {"format": {"type": "text"}, **text},
        "reasoning": fields.get("reasoning", {"effort": None, "summary": None}),
        "metadata": chat.get("metadata", {}),
        "user": chat.get("user"),
        "truncation": fields.get("truncation", "disabled"),
        "store": False,
    }
    return ResponsesRequest(**structs.asdict(parsed), echo=echo)


# --- Input items ------------------------------------------------------------------------------------------


def _messages(given: Any) -> list[dict[str, Any]]:
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    if not isinstance(given, list):
        raise InvalidParameter("input", "expected a string or an array of input items")
    messages: list[dict[str, Any]] = []
    reasoning: list[dict[str, Any]] = []  # details waiting for the assistant turn they belong to
    for i, item in enumerate(given):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidParameter(path, "expected an input item object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidParameter(f"{path}.role",
                                       f"must be one of user, assistant, system, developer, got {role!r}")
            content = _content(item.get("content"), f"{path}.content", role)
            if role == "assistant":
                messages.append({"role": "assistant", "content": content})
                _attach(messages[-1], reasoning)
            else:
                messages.append({"role": role, "content": content})
        elif kind == "function_call":
            call_id, name, arguments = (item.get(k) for k in ("call_id", "name", "arguments"))
            for key, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
                if not isinstance(value, str):
                    raise InvalidParameter(f"{path}.{key}", "expected a string")
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and not reasoning:
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
                _attach(messages[-1], reasoning)
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise InvalidParameter(f"{path}.call_id", "expected a string")
            output = item.get("output")
            content = output if isinstance(output, str) else _content(output, f"{path}.output", "tool")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        elif kind == "reasoning":
            reasoning += _reasoning_details(item, path)
        elif kind == "web_search_call":
            continue  # an earlier turn's search (clients replay it): what it found is in the reply it preceded
        else:
            raise InvalidParameter(f"{path}.type", f"the item type {kind!r} is not supported by this gateway")
    return messages


def _attach(message: dict[str, Any], reasoning: list[dict[str, Any]]) -> None:
    if reasoning:
        message["reasoning_details"] = list(reasoning)
        reasoning.clear()


def _content(content: Any, path: str, role: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidParameter(path, "expected a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(part.get("text"), str):
                raise InvalidParameter(f"{where}.text", "expected a string")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and role == "assistant":
            parts.append({"type": "text", "text": String()(part.get("refusal"), f"{where}.refusal")})
        elif kind == "input_image" and role != "assistant":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                what = "file_id needs a file store, which this gateway has not" if part.get("file_id") else \
                    "expected an http(s) URL or a data: URL"
                raise InvalidParameter(f"{where}.image_url", what)
            image: dict[str, Any] = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file" and role != "assistant":
            data = part.get("file_data") or part.get("file_url")
            if not isinstance(data, str):
                raise InvalidParameter(f"{where}.file_data", "expected file_data or file_url (file_id needs a file "
                                                             "store, which this gateway has not)")
            file = {"file_data": data}
            if isinstance(part.get("filename"), str):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            raise InvalidParameter(f"{where}.type", f"the part type {kind!r} is not allowed in {role} content")
    return parts


def _reasoning_details(item: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    sealed = item.get("encrypted_content")
    if isinstance(sealed, str) and sealed.startswith(SEAL):
        return unseal_reasoning(sealed, f"{path}.encrypted_content")
    details: list[dict[str, Any]] = []
    for part in item.get("summary") or ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            details.append({"type": "reasoning.summary", "summary": part["text"]})
    for part in item.get("content") or ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            details.append({"type": "reasoning.text", "text": part["text"]})
    if isinstance(sealed, str) and sealed:
        details.append({"type": "reasoning.encrypted", "data": sealed})
    return details


def seal_reasoning(details: list[dict[str, Any]]) -> str:
    """Chat `reasoning_details` as one opaque `encrypted_content` string (URL-safe base64 of their JSON)."""
    return SEAL + base64.urlsafe_b64encode(orjson.dumps(details)).decode()


def unseal_reasoning(sealed: str, path: str) -> list[dict[str, Any]]:
    try:
        details = orjson.loads(base64.urlsafe_b64decode(sealed[len(SEAL):]))
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameter(path, "is not reasoning this gateway returned") from exc
    if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
        raise InvalidParameter(path, "is not reasoning this gateway returned")
    return details


# --- Tools and formats ------------------------------------------------------------------------------------


def _tool(tool: Mapping[str, Any], path: str) -> dict[str, Any]:
    kind = tool.get("type")
    if is_web_search(tool):
        return dict(tool)  # served by the `web` plugin (`schema.server_tools`, read with the chat request)
    if kind != "function":
        # Other built-in tools (file_search, code_interpreter, ...) need an endpoint that runs them; none
        # here does, and serving the request without them would change its meaning.
        raise InvalidParameter(f"{path}.type", f"the tool {kind!r} is not available on this gateway")
    function = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if is_web_search(choice):
        return choice
    if isinstance(choice, dict):
        raise InvalidParameter("tool_choice.type", f"the tool choice {choice.get('type')!r} is not supported")
    return choice


def _response_format(given: Mapping[str, Any]) -> dict[str, Any]:
    if given["type"] != "json_schema":
        return {"type": given["type"]}
    if "name" not in given:
        raise InvalidParameter("text.format.name", "is required")
    schema = {key: given[key] for key in ("name", "description", "schema", "strict") if key in given}
    return {"type": "json_schema", "json_schema": schema}


__all__ = ["FIELDS", "SEAL", "ResponsesRequest", "parse_responses_request", "seal_reasoning", "unseal_reasoning"]
