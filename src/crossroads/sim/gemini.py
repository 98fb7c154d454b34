"""The Gemini API wire format (Google AI Studio):

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent      `?alt=sse` for server-sent events

Authenticated by the `x-goog-api-key` header or the `key` query parameter (403 PERMISSION_DENIED without
one). The model is named in the path; directives after `#` arrive URL-encoded (`%23`) and are decoded by the
router. Requests are checked the way the API checks them (Gemini API reference,
https://ai.google.dev/api/generate-content, and the troubleshooting guide's error table): unknown fields
("Unknown name ... Cannot find field"; camelCase and snake_case names are both accepted, as by the real
proto-JSON parser), empty `contents` or `parts`, roles other than `user` / `model`, a part with no or two
data fields, bad base64, out-of-range `generationConfig` values, `Schema` objects outside Gemini's OpenAPI
subset (so `additionalProperties`, `$ref` or `const` are rejected), an OBJECT function `parameters` without
properties, a `functionResponse` that does not answer the previous turn's `functionCall`s (by name and
count), and — for `gemini-3*` models — a function call of the current turn sent back without its
`thoughtSignature`. Errors have Google's shape: `{"error": {"code", "message", "status"}}`.

What the reply contains, in order of precedence:
  * function calls, when `functionDeclarations` are given, the calling mode is not NONE, the last turn is
    not a function response, and either the mode is ANY (the functions named in the last user text, else
    the first allowed one) or the last user text names functions (case-insensitive; all of them are called,
    in parallel); arguments are generated from the declaration's `parameters` / `parametersJsonSchema`;
  * JSON, for `responseMimeType: application/json`: an instance of `responseSchema` / `responseJsonSchema`,
    else `{"reply": <text>}`;
  * a quote of the function responses of the last turn ("Tool result: ..."), after a tool round trip;
  * otherwise deterministic prose of `tokens` tokens (default 8-40, from the conversation hash).
Thinking: with `thinkingConfig.includeThoughts` the candidate starts with a thought part (deterministic
text) and its first answer part carries a `thoughtSignature`; thought tokens (the `reasoning` directive,
else 12-31, capped by `thinkingBudget`) are reported as `thoughtsTokenCount` and count towards
`maxOutputTokens`, as on Gemini 2.5. `candidateCount` gives that many candidates, `stopSequences` cut the
text (STOP), the output cap ends it with MAX_TOKENS. The `cached=n` directive is reported as
`cachedContentTokenCount`.

Usage: prompt tokens are the tokenizer count of every text part (system instruction included), of each
function call's and response's JSON, plus 258 per inline or file part; candidate tokens are the output
tokens (function-call arguments for calls) summed over candidates.

Streams (`alt=sse`) send one `GenerateContentResponse` per event, framed `data: <json>\\r\\n\\r\\n` as
Google does: thoughts, then text pieces (`chunk_tokens` per event) or all of a candidate's function calls
at once, then a last event with `finishReason` and the full `usageMetadata`. Without `alt=sse` the same
objects are streamed as one JSON array. An in-band error is an event holding `{"error": {...}}`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from . import reply
from .behaviour import Behaviour
from .wire import EventKind, SimError, StreamEvent

__all__ = ["GEMINI", "GeminiExchange", "GeminiFormat", "count_prompt_tokens"]

TOKENS_PER_MEDIA: Final = 258
MAX_CANDIDATES: Final = 8
MAX_STOP_SEQUENCES: Final = 5
MAX_LOGPROBS: Final = 20
MAX_THINKING_BUDGET: Final = 32768
SIGNATURE_REQUIRED: Final = ("gemini-3",)
"""Models that reject a function call of the current turn sent back without its thought signature."""

_JSON = "application/json; charset=UTF-8"
_SSE = "text/event-stream"
_ROLES: Final = ("user", "model")
_MIME_TYPES: Final = ("text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum")
_MODES: Final = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_TYPES: Final = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_INT64_FIELDS: Final = ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength")

# Field names of each message, as the API's JSON names them (camelCase).
_REQUEST: Final = frozenset({"model", "contents", "systemInstruction", "tools", "toolConfig", "safetySettings",
                             "generationConfig", "cachedContent"})
_CONTENT: Final = frozenset({"parts", "role"})
_PART: Final = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                          "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "partMetadata",
                          "mediaResolution"})
_PART_DATA: Final = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                     "codeExecutionResult")
_BLOB: Final = frozenset({"mimeType", "data"})
_FILE_DATA: Final = frozenset({"mimeType", "fileUri"})
_FUNCTION_CALL: Final = frozenset({"id", "name", "args"})
_FUNCTION_RESPONSE: Final = frozenset({"id", "name", "response", "willContinue", "scheduling", "parts"})
_GENERATION_CONFIG: Final = frozenset({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "imageConfig", "mediaResolution",
})
_THINKING_CONFIG: Final = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
_TOOL: Final = frozenset({"functionDeclarations", "googleSearchRetrieval", "codeExecution", "googleSearch",
                          "urlContext", "computerUse", "fileSearch", "googleMaps"})
_FUNCTION_DECLARATION: Final = frozenset({"name", "description", "parameters", "parametersJsonSchema", "response",
                                          "responseJsonSchema", "behavior"})
_TOOL_CONFIG: Final = frozenset({"functionCallingConfig", "retrievalConfig"})
_FUNCTION_CALLING_CONFIG: Final = frozenset({"mode", "allowedFunctionNames"})
_SAFETY_SETTING: Final = frozenset({"category", "threshold"})
_SCHEMA: Final = frozenset({"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                            "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
                            "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
                            "maximum"})

# ---------------------------------------------------------------------------------------------- errors

_STATUS_NAMES: Final = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                        408: "DEADLINE_EXCEEDED", 409: "ABORTED", 412: "FAILED_PRECONDITION",
                        429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
                        503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
# Per status: the message Google sends (`{model}` is filled in).
_STATUS_MESSAGES: Final = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
         "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "models/{model} is not found for API version v1beta, or is not supported for generateContent. Call "
         "ListModels to see the list of available models and their supported methods.",
    429: "You exceeded your current quota, please check your plan and billing details. For more information on "
         "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_MISSING_KEY: Final = ("Method doesn't allow unregistered callers (callers without established identity). Please use "
                       "API Key or other form of API consumer identity to call this API.")


def status_name(code: int) -> str:
    return _STATUS_NAMES.get(code, "UNKNOWN" if code >= 500 else "INVALID_ARGUMENT")


def _error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status_name(code)}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def _invalid(message: str) -> SimError:
    return SimError(400, _error_body(400, message))


def _field_error(where: str, message: str) -> SimError:
    """A validation failure, worded as the API words them: `* GenerateContentRequest.<path>: <message>`."""
    return _invalid(f"* GenerateContentRequest.{where}: {message}\n")


def _bad_value(where: str, kind: str, value: Any) -> SimError:
    shown = value if isinstance(value, str) else orjson.dumps(value).decode()
    return _invalid(f"Invalid JSON payload received. Invalid value at '{where}' ({kind}), {shown}")


_STREAM_ERROR = _error_body(500, _STATUS_MESSAGES[500])

# ------------------------------------------------------------------------------------------ field names


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _message(value: Any, known: frozenset[str], where: str, kind: str) -> dict[str, Any]:
    """A proto message: an object whose keys are known fields (camelCase or snake_case), keys made camel."""
    if not isinstance(value, dict):
        raise _bad_value(where or "request", f"type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}",
                         value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in known else _camel(key)
        if name not in known:
            at = f" at '{where}'" if where else ""
            raise _invalid(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.')
        out[name] = item
    return out


def _join(where: str, name: str) -> str:
    return f"{where}.{_snake(name)}" if where else _snake(name)


# ------------------------------------------------------------------------------------- scalar checks


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any, where: str, kind: str = "TYPE_INT32") -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):  # int64 fields may be JSON strings
        return int(value)
    if not _is_number(value) or value != int(value):
        raise _bad_value(where, kind, value)
    return int(value)


def _number(value: Any, where: str) -> float:
    if not _is_number(value):
        raise _bad_value(where, "TYPE_FLOAT", value)
    return float(value)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _bad_value(where, "TYPE_BOOL", value)
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad_value(where, "TYPE_STRING", value)
    return value


def _base64(value: Any, where: str) -> str:
    text = _string(value, where)
    try:
        if "-" in text or "_" in text:
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for \"{text[:40]}\"") \
            from None
    return text


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(f"Invalid JSON payload received. Invalid value at '{where}': expected a list")
    return value


# ------------------------------------------------------------------------------------------ validation


@dataclass(slots=True)
class _Request:
    model: str
    stream: bool
    sse: bool
    contents: list[dict[str, Any]]
    system: list[str] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "AUTO"
    allowed: list[str] = field(default_factory=list)
    candidates: int = 1
    max_tokens: int | None = None
    stops: list[str] = field(default_factory=list)
    mime: str = "text/plain"
    schema: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    include_thoughts: bool = False
    thinking_budget: int | None = None


def _validate(request: web.Request, body: Any, model: str) -> _Request:
    data = _message(body, _REQUEST, "", "GenerateContentRequest")
    stream = request.path.endswith(":streamGenerateContent")
    parsed = _Request(model=model, stream=stream, sse=request.query.get("alt") == "sse",
                      contents=_contents(data.get("contents")))
    if data.get("systemInstruction") is not None:
        parsed.system = _system(data["systemInstruction"])
    if data.get("tools") is not None:
        parsed.functions = _tools(data["tools"])
    if data.get("toolConfig") is not None:
        parsed.mode, parsed.allowed = _tool_config(data["toolConfig"], parsed.functions)
    for i, setting in enumerate(_list(data.get("safetySettings") or [], "safety_settings")):
        _message(setting, _SAFETY_SETTING, f"safety_settings[{i}]", "SafetySetting")
    if data.get("cachedContent") is not None:
        _string(data["cachedContent"], "cached_content")
    if data.get("generationConfig") is not None:
        _generation_config(data["generationConfig"], parsed)
    _check_turns(parsed.contents, model)
    return parsed


def _contents(value: Any) -> list[dict[str, Any]]:
    if value is None or value == []:
        raise _field_error("contents", "contents is not specified")
    contents = []
    for i, raw in enumerate(_list(value, "contents")):
        where = f"contents[{i}]"
        content = _message(raw, _CONTENT, where, "Content")
        role = content.get("role") or "user"
        if role not in _ROLES:
            raise _invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise _field_error(f"{where}.parts", "contents.parts must not be empty.")
        contents.append({"role": role, "parts": [_part(p, f"{where}.parts[{j}]")
                                                 for j, p in enumerate(_list(parts, f"{where}.parts"))]})
    return contents


def _part(value: Any, where: str) -> dict[str, Any]:
    part = _message(value, _PART, where, "Part")
    present = [name for name in _PART_DATA if name in part]
    if not present:
        raise _field_error(f"{where}.data", "required oneof field 'data' must have one initialized field")
    if len(present) > 1:
        raise _invalid(f"Invalid JSON payload received. Oneof field 'data' is already set. "
                       f"Cannot set '{present[1]}'")
    kind = present[0]
    at = _join(where, kind)
    if kind == "text":
        _string(part["text"], at)
    elif kind == "inlineData":
        blob = part["inlineData"] = _message(part["inlineData"], _BLOB, at, "Blob")
        if not blob.get("mimeType"):
            raise _field_error(f"{at}.mime_type", "mime_type is required")
        _base64(blob.get("data", ""), f"{at}.data")
    elif kind == "fileData":
        file = part["fileData"] = _message(part["fileData"], _FILE_DATA, at, "FileData")
        if not file.get("fileUri"):
            raise _field_error(f"{at}.file_uri", "file_uri is required")
    elif kind == "functionCall":
        call = part["functionCall"] = _message(part["functionCall"], _FUNCTION_CALL, at, "FunctionCall")
        if not call.get("name"):
            raise _field_error(f"{at}.name", "Name cannot be empty.")
        if call.get("args") is not None and not isinstance(call["args"], dict):
            raise _bad_value(f"{at}.args", "type.googleapis.com/google.protobuf.Struct", call["args"])
    elif kind == "functionResponse":
        response = part["functionResponse"] = _message(part["functionResponse"], _FUNCTION_RESPONSE, at,
                                                       "FunctionResponse")
        if not response.get("name"):
            raise _field_error(f"{at}.name", "Name cannot be empty.")
        if not isinstance(response.get("response"), dict):
            raise _bad_value(f"{at}.response", "type.googleapis.com/google.protobuf.Struct", response.get("response"))
    if "thought" in part:
        _boolean(part["thought"], f"{where}.thought")
    if "thoughtSignature" in part:
        _base64(part["thoughtSignature"], f"{where}.thought_signature")
    return part


def _system(value: Any) -> list[str]:
    content = _message(value, _CONTENT, "system_instruction", "Content")
    texts = []
    for j, raw in enumerate(_list(content.get("parts") or [], "system_instruction.parts")):
        part = _part(raw, f"system_instruction.parts[{j}]")
        if "text" not in part:
            raise _field_error(f"system_instruction.parts[{j}]", "system instruction parts must be text")
        texts.append(part["text"])
    return texts


def _schema(value: Any, where: str) -> dict[str, Any]:
    """Check a `Schema` (Gemini's OpenAPI subset); return the JSON Schema it means, for generating values."""
    schema = _message(value, _SCHEMA, where, "Schema")
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind is not None:
        if not isinstance(kind, str) or kind.upper() not in _TYPES:
            raise _bad_value(f"{where}.type", "type.googleapis.com/google.ai.generativelanguage.v1beta.Type", kind)
        if kind.upper() not in ("TYPE_UNSPECIFIED", "NULL"):
            out["type"] = kind.lower()
    if "enum" in schema:
        values = _list(schema["enum"], f"{where}.enum")
        for k, item in enumerate(values):
            _string(item, f"{where}.enum[{k}]")
        out["enum"] = values
    for name in _INT64_FIELDS:
        if name in schema:
            out[name] = _integer(schema[name], _join(where, name), "TYPE_INT64")
    for name in ("minimum", "maximum"):
        if name in schema:
            out[name] = _number(schema[name], _join(where, name))
    for name in ("format", "title", "description", "pattern"):
        if name in schema:
            out[name] = _string(schema[name], _join(where, name))
    if "nullable" in schema:
        _boolean(schema["nullable"], f"{where}.nullable")
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            raise _bad_value(f"{where}.properties", "map", properties)
        out["properties"] = {name: _schema(sub, f"{where}.properties[{name}]") for name, sub in properties.items()}
    for name in ("required", "propertyOrdering"):
        if name in schema:
            names = [_string(item, f"{_join(where, name)}[{k}]")
                     for k, item in enumerate(_list(schema[name], _join(where, name)))]
            if name == "required":
                out["required"] = names
    if "items" in schema:
        out["items"] = _schema(schema["items"], f"{where}.items")
    if "anyOf" in schema:
        out["anyOf"] = [_schema(sub, f"{where}.any_of[{k}]")
                        for k, sub in enumerate(_list(schema["anyOf"], f"{where}.any_of"))]
    return out


def _tools(value: Any) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(value, "tools")):
        tool = _message(raw, _TOOL, f"tools[{i}]", "Tool")
        declarations = tool.get("functionDeclarations") or []
        for j, item in enumerate(_list(declarations, f"tools[{i}].function_declarations")):
            where = f"tools[{i}].function_declarations[{j}]"
            declaration = _message(item, _FUNCTION_DECLARATION, where, "FunctionDeclaration")
            name = declaration.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise _field_error(f"{where}.name", "Invalid function name. Must start with a letter or an "
                                   "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), "
                                   "colons (:), or dashes (-), with a maximum length of 64.")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise _field_error(f"{where}", "parameters and parameters_json_schema cannot both be set.")
            parameters: dict[str, Any] | None = None
            if declaration.get("parameters") is not None:
                parameters = _schema(declaration["parameters"], f"{where}.parameters")
                if parameters.get("type") == "object" and not parameters.get("properties"):
                    raise _field_error(f"{where}.parameters.properties", "should be non-empty for OBJECT type")
            elif isinstance(declaration.get("parametersJsonSchema"), dict):
                parameters = declaration["parametersJsonSchema"]
            functions.append({"name": name, "parameters": parameters})
    return functions


def _tool_config(value: Any, functions: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    config = _message(value, _TOOL_CONFIG, "tool_config", "ToolConfig")
    calling = _message(config.get("functionCallingConfig") or {}, _FUNCTION_CALLING_CONFIG,
                       "tool_config.function_calling_config", "FunctionCallingConfig")
    mode = calling.get("mode", "AUTO")
    if mode not in _MODES:
        raise _bad_value("tool_config.function_calling_config.mode",
                         "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode", mode)
    where = "tool_config.function_calling_config.allowed_function_names"
    allowed = [_string(name, f"{where}[{k}]") for k, name in enumerate(_list(calling.get("allowedFunctionNames") or [],
                                                                              where))]
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise _field_error(where, "allowed_function_names should only be set when mode is ANY or VALIDATED.")
    declared = {function["name"] for function in functions}
    for name in allowed:
        if name not in declared:
            raise _field_error(where, f"function name '{name}' is not declared in tools.")
    return ("AUTO" if mode == "MODE_UNSPECIFIED" else mode), allowed


def _generation_config(value: Any, parsed: _Request) -> None:
    where = "generation_config"
    config = _message(value, _GENERATION_CONFIG, where, "GenerationConfig")

    def ranged(name: str, low: float, high: float) -> None:
        if name in config:
            number = _number(config[name], _join(where, name))
            if not low <= number <= high:
                raise _field_error(_join(where, name), f"must be in the range [{low:g}, {high:g}], got {number:g}.")

    ranged("temperature", 0, 2)
    ranged("topP", 0, 1)
    ranged("presencePenalty", -2, 2)
    ranged("frequencyPenalty", -2, 2)
    if "topK" in config and _number(config["topK"], f"{where}.top_k") < 1:
        raise _field_error(f"{where}.top_k", "must be at least 1.")
    if "seed" in config:
        _integer(config["seed"], f"{where}.seed")
    if "candidateCount" in config:
        parsed.candidates = _integer(config["candidateCount"], f"{where}.candidate_count")
        if not 1 <= parsed.candidates <= MAX_CANDIDATES:
            raise _field_error(f"{where}.candidate_count", f"must be between 1 and {MAX_CANDIDATES}.")
    if "maxOutputTokens" in config:
        parsed.max_tokens = _integer(config["maxOutputTokens"], f"{where}.max_output_tokens")
        if parsed.max_tokens < 1:
            raise _field_error(f"{where}.max_output_tokens", "must be positive.")
    if "stopSequences" in config:
        stops = _list(config["stopSequences"], f"{where}.stop_sequences")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise _field_error(f"{where}.stop_sequences", f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed.")
        parsed.stops = [_string(s, f"{where}.stop_sequences[{k}]") for k, s in enumerate(stops)]
    if "responseLogprobs" in config:
        parsed.logprobs = _boolean(config["responseLogprobs"], f"{where}.response_logprobs")
    if "logprobs" in config:
        parsed.top_logprobs = _integer(config["logprobs"], f"{where}.logprobs")
        if not 0 <= parsed.top_logprobs <= MAX_LOGPROBS:
            raise _field_error(f"{where}.logprobs", f"must be in the range [0, {MAX_LOGPROBS}].")
        if not parsed.logprobs:
            raise _field_error(f"{where}.logprobs", "logprobs can only be set when response_logprobs is true.")
    _response_format(config, parsed)
    if config.get("thinkingConfig") is not None:
        thinking = _message(config["thinkingConfig"], _THINKING_CONFIG, f"{where}.thinking_config", "ThinkingConfig")
        if "includeThoughts" in thinking:
            parsed.include_thoughts = _boolean(thinking["includeThoughts"], f"{where}.thinking_config.include_thoughts")
        if "thinkingBudget" in thinking:
            budget = _integer(thinking["thinkingBudget"], f"{where}.thinking_config.thinking_budget")
            if not -1 <= budget <= MAX_THINKING_BUDGET:
                raise _invalid(f"The thinking budget {budget} is invalid. Please choose a value between 0 and "
                               f"{MAX_THINKING_BUDGET}, or -1 for a dynamic budget.")
            parsed.thinking_budget = budget


def _response_format(config: Mapping[str, Any], parsed: _Request) -> None:
    where = "generation_config"
    mime = config.get("responseMimeType", "text/plain")
    if mime not in _MIME_TYPES:
        raise _field_error(f"{where}.response_mime_type", "allowed mimetypes are `text/plain`, `application/json`, "
                           "`application/xml`, `application/yaml` and `text/x.enum`.")
    parsed.mime = mime
    has_schema = config.get("responseSchema") is not None
    has_json_schema = config.get("responseJsonSchema") is not None
    if has_schema and has_json_schema:
        raise _field_error(f"{where}.response_schema", "response_schema and response_json_schema cannot both be set.")
    if (has_schema or has_json_schema) and mime not in ("application/json", "text/x.enum"):
        raise _field_error(f"{where}.response_mime_type", "response_mime_type must be application/json or "
                           "text/x.enum when a response schema is set.")
    if has_schema:
        parsed.schema = _schema(config["responseSchema"], f"{where}.response_schema")
    elif has_json_schema:
        if not isinstance(config["responseJsonSchema"], dict):
            raise _bad_value(f"{where}.response_json_schema", "type.googleapis.com/google.protobuf.Value",
                             config["responseJsonSchema"])
        parsed.schema = config["responseJsonSchema"]


def _check_turns(contents: list[dict[str, Any]], model: str) -> None:
    """Function responses must answer the previous model turn's calls; gemini-3 needs signatures back."""
    previous: list[str] = []
    for i, content in enumerate(contents):
        parts = content["parts"]
        calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
        responses = [(j, p["functionResponse"]["name"]) for j, p in enumerate(parts) if "functionResponse" in p]
        if responses:
            if content["role"] != "user" or not previous:
                raise _invalid("Please ensure that function response turn comes immediately after a function call "
                               "turn.")
            for j, name in responses:
                if name not in previous:
                    raise _field_error(f"contents[{i}].parts[{j}].function_response.name",
                                       f"function response '{name}' answers no function call of the previous turn.")
            if len(responses) != len(previous):
                raise _invalid("Please ensure that the number of function response parts is equal to the number of "
                               "function call parts of the function call turn.")
        previous = calls if content["role"] == "model" else []
    if not model.startswith(SIGNATURE_REQUIRED):
        return
    start = max((i for i, c in enumerate(contents)
                 if c["role"] == "user" and any("functionResponse" not in p for p in c["parts"])), default=0)
    for content in contents[start:]:
        calls_in = [p for p in content["parts"] if "functionCall" in p]
        if content["role"] == "model" and calls_in and "thoughtSignature" not in calls_in[0]:
            position = content["parts"].index(calls_in[0]) + 1
            raise _invalid("Function call is missing a thought_signature in functionCall parts. This is required for "
                           "tools to work correctly, and missing thought_signature may lead to degraded model "
                           "performance. Additional data, function call `default_api:"
                           f"{calls_in[0]['functionCall']['name']}` , position {position}. Please refer to "
                           "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


# ------------------------------------------------------------------------------------------- content


def count_prompt_tokens(system: Sequence[str], contents: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(text tokens, media tokens) of a request: text parts and function call / response JSON, and 258 per
    inline or file part."""
    text = sum(reply.count_tokens(t) for t in system)
    media = 0
    for content in contents:
        for part in content["parts"]:
            if "text" in part:
                text += reply.count_tokens(part["text"])
            elif "functionCall" in part:
                call = part["functionCall"]
                text += reply.count_tokens(call["name"] + orjson.dumps(call.get("args") or {}).decode())
            elif "functionResponse" in part:
                response = part["functionResponse"]
                text += reply.count_tokens(response["name"] + orjson.dumps(response["response"]).decode())
            elif "inlineData" in part or "fileData" in part:
                media += TOKENS_PER_MEDIA
    return text, media


def _functions_to_call(parsed: _Request) -> list[dict[str, Any]]:
    if not parsed.functions or parsed.mode == "NONE":
        return []
    last = parsed.contents[-1]
    if last["role"] != "user" or any("functionResponse" in part for part in last["parts"]):
        return []
    said = " ".join(part["text"] for part in last["parts"] if "text" in part).lower()
    candidates = parsed.functions
    if parsed.mode == "ANY" and parsed.allowed:
        candidates = [f for f in parsed.functions if f["name"] in parsed.allowed]
    named = [f for f in candidates if f["name"].lower() in said]
    if parsed.mode == "ANY":
        return named or candidates[:1]
    return named


def _function_results(contents: Sequence[Mapping[str, Any]]) -> list[str]:
    last = contents[-1]
    if last["role"] != "user":
        return []
    results = []
    for part in last["parts"]:
        if "functionResponse" in part:
            response = part["functionResponse"]["response"]
            value = next((response[key] for key in ("result", "output", "content") if key in response), response)
            results.append(value if isinstance(value, str) else orjson.dumps(value).decode())
    return results


@dataclass(slots=True)
class _Candidate:
    index: int
    thoughts: list[str]
    pieces: list[str]
    calls: list[dict[str, Any]]
    finish: str
    tokens: int
    signature: str | None
    logprobs: list[dict[str, Any]] | None


def _signature(seed: int) -> str:
    raw = b"".join(reply.mix(seed, k).to_bytes(8, "little") for k in range(12))
    return base64.b64encode(raw).decode()


def _plan(parsed: _Request, behaviour: Behaviour, seed: int, index: int, thoughts: int,
          calls: list[dict[str, Any]]) -> _Candidate:
    choice_seed = reply.mix(seed, index + 1)
    budget = None if parsed.max_tokens is None else parsed.max_tokens - thoughts
    thought_text = list(reply.text_pieces(reply.mix(choice_seed, 0x7407), thoughts)) \
        if parsed.include_thoughts and thoughts else []
    signature = _signature(choice_seed) if thoughts else None
    length = budget is not None and budget <= 0
    if calls and not length:
        made = []
        for j, function in enumerate(calls):
            arguments = reply.tool_arguments(function["parameters"], reply.mix(choice_seed, j + 1))
            made.append({"name": function["name"], "args": orjson.loads(arguments)})
        tokens = sum(reply.count_tokens(orjson.dumps(c["args"]).decode()) for c in made)
        return _Candidate(index, thought_text, [], made, "STOP", tokens, signature, None)

    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(choice_seed)
    results = _function_results(parsed.contents)
    if parsed.mime == "application/json":
        value = reply.json_instance(parsed.schema, choice_seed) if parsed.schema is not None \
            else {"reply": "".join(reply.text_pieces(choice_seed, count))}
        pieces = reply.split_pieces(orjson.dumps(value).decode())
    elif results:
        pieces = reply.split_pieces("Tool result: " + " | ".join(results))
    else:
        pieces = list(reply.text_pieces(choice_seed, count))
    if budget is not None and len(pieces) > budget:
        pieces, length = pieces[: max(budget, 0)], True
    pieces, stopped = reply.apply_stop(pieces, parsed.stops)
    finish = "MAX_TOKENS" if length and not stopped else "STOP"
    logprobs = reply.token_logprobs(pieces, reply.mix(choice_seed, 0x1095), parsed.top_logprobs) \
        if parsed.logprobs else None
    return _Candidate(index, thought_text, pieces, [], finish, reply.count_tokens("".join(pieces)), signature,
                      logprobs)


# ------------------------------------------------------------------------------------------ exchange


class GeminiExchange:
    """One planned reply: the `GenerateContentResponse` body, or the stream of them."""

    __slots__ = ("_candidates", "_chunk_tokens", "_id", "_parsed", "_prompt", "_started", "_thoughts", "_usage")

    def __init__(self, parsed: _Request, behaviour: Behaviour, serial: int) -> None:
        self._started = time.monotonic()
        self._parsed = parsed
        seed = reply.seed_of({"system": parsed.system, "contents": parsed.contents})
        text, media = count_prompt_tokens(parsed.system, parsed.contents)
        prompt = text + media
        thoughts = behaviour.reasoning
        if not thoughts and (parsed.include_thoughts or (parsed.thinking_budget or 0) > 0):
            thoughts = 12 + reply.mix(seed, 0x7401) % 20
            if parsed.thinking_budget is not None and parsed.thinking_budget > 0:
                thoughts = min(thoughts, parsed.thinking_budget)
        if parsed.max_tokens is not None:
            thoughts = min(thoughts, parsed.max_tokens)
        self._thoughts = thoughts
        calls = _functions_to_call(parsed)
        self._candidates = [_plan(parsed, behaviour, seed, i, thoughts, calls) for i in range(parsed.candidates)]
        output = sum(candidate.tokens for candidate in self._candidates)
        cached = min(behaviour.cached, prompt)
        self._prompt = prompt
        self._usage = _without_zeros({
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + thoughts * parsed.candidates,
            "cachedContentTokenCount": cached,
            "thoughtsTokenCount": thoughts * parsed.candidates,
            "promptTokensDetails": _modalities(text, media),
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": cached}] if cached else None,
        })
        self._chunk_tokens = behaviour.chunk_tokens
        self._id = reply.alnum_id(reply.mix(seed, serial, time.time_ns()), 22)

    @property
    def stream(self) -> bool:
        return self._parsed.stream

    @property
    def generated_tokens(self) -> int:
        return sum(c.tokens for c in self._candidates) + self._thoughts * len(self._candidates)

    @property
    def reasoning_tokens(self) -> int:
        return self._thoughts

    @property
    def usage(self) -> dict[str, Any]:
        return self._usage

    def headers(self) -> dict[str, str]:
        elapsed = int((time.monotonic() - self._started) * 1000)
        return {
            "Content-Type": _SSE if self.stream and self._parsed.sse else _JSON,
            "Vary": "Origin, X-Origin, Referer",
            "Server-Timing": f"gfet4t7; dur={elapsed}",
            "X-Content-Type-Options": "nosniff",
        }

    # non-stream

    def body(self) -> bytes:
        return orjson.dumps(self._response([self._candidate(c, _parts(c)) for c in self._candidates], self._usage))

    def _response(self, candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": self._parsed.model,
                "responseId": self._id}

    @staticmethod
    def _candidate(candidate: _Candidate, parts: list[dict[str, Any]], final: bool = True) -> dict[str, Any]:
        content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
        out: dict[str, Any] = {"content": content}
        if final:
            out["finishReason"] = candidate.finish
            if candidate.logprobs is not None:
                out.update(_logprobs(candidate.logprobs))
        out["index"] = candidate.index
        return out

    # stream

    def _frame(self, payload: dict[str, Any], last: bool = False) -> bytes:
        data = orjson.dumps(payload)
        if self._parsed.sse:
            return b"data: " + data + b"\r\n\r\n"
        return data + (b"]" if last else b",\r\n")

    def _candidate_events(self, candidate: _Candidate) -> Iterator[tuple[dict[str, Any], EventKind, int]]:
        if candidate.thoughts:
            yield self._candidate(candidate, [{"text": "".join(candidate.thoughts), "thought": True}], False), \
                EventKind.CONTENT, 0
        signature = candidate.signature
        if candidate.calls:
            parts: list[dict[str, Any]] = [{"functionCall": call} for call in candidate.calls]
            if signature:
                parts[0]["thoughtSignature"] = signature
            yield self._candidate(candidate, parts, False), EventKind.CONTENT, candidate.tokens
        step = self._chunk_tokens
        for at in range(0, len(candidate.pieces), step):
            text = "".join(candidate.pieces[at: at + step])
            part: dict[str, Any] = {"text": text}
            if signature and at == 0:
                part["thoughtSignature"] = signature
            yield self._candidate(candidate, [part], False), EventKind.CONTENT, reply.count_tokens(text)
        yield self._candidate(candidate, [{"text": ""}]), EventKind.TAIL, 0

    def events(self) -> Iterator[StreamEvent]:
        if not self._parsed.sse:
            yield StreamEvent(b"[", EventKind.HEAD)
        if len(self._candidates) == 1:
            sequence: Iterator[tuple[dict[str, Any], EventKind, int]] = self._candidate_events(self._candidates[0])
        else:
            streams = [self._candidate_events(candidate) for candidate in self._candidates]
            sequence = (item for row in itertools.zip_longest(*streams) for item in row if item is not None)
        items = list(sequence)
        produced = 0
        for position, (candidate, kind, tokens) in enumerate(items):
            produced += tokens
            last = position == len(items) - 1
            usage = self._usage if last else self._running_usage(produced)
            yield StreamEvent(self._frame(self._response([candidate], usage), last), kind, tokens)

    def _running_usage(self, produced: int) -> dict[str, Any]:
        thoughts = self._thoughts * len(self._candidates)
        return _without_zeros({"promptTokenCount": self._prompt, "candidatesTokenCount": produced,
                               "totalTokenCount": self._prompt + produced + thoughts, "thoughtsTokenCount": thoughts,
                               "promptTokensDetails": self._usage.get("promptTokensDetails")})

    def malformed_event(self) -> bytes:
        data = b'{"candidates": [{"content": {"parts": [{"text": "'
        return b"data: " + data + b"\r\n\r\n" if self._parsed.sse else data

    def error_event(self) -> bytes:
        return b"data: " + _STREAM_ERROR + b"\r\n\r\n" if self._parsed.sse else _STREAM_ERROR + b"]"


def _parts(candidate: _Candidate) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if candidate.thoughts:
        parts.append({"text": "".join(candidate.thoughts), "thought": True})
    answer: list[dict[str, Any]] = [{"functionCall": call} for call in candidate.calls]
    if not candidate.calls and candidate.pieces:
        answer.append({"text": "".join(candidate.pieces)})
    if answer and candidate.signature:
        answer[0]["thoughtSignature"] = candidate.signature
    return parts + answer


def _logprobs(entries: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = [{"token": e["token"], "logProbability": e["logprob"]} for e in entries]
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if any(e["top_logprobs"] for e in entries):
        result["topCandidates"] = [{"candidates": [{"token": t["token"], "logProbability": t["logprob"]}
                                                   for t in e["top_logprobs"]]} for e in entries]
    average = sum(e["logprob"] for e in entries) / len(entries) if entries else 0.0
    return {"avgLogprobs": average, "logprobsResult": result}


def _modalities(text: int, media: int) -> list[dict[str, Any]]:
    details = [{"modality": "TEXT", "tokenCount": text}]
    if media:
        details.append({"modality": "IMAGE", "tokenCount": media})
    return details


def _without_zeros(usage: dict[str, Any]) -> dict[str, Any]:
    """proto3 JSON leaves out fields at their default: zero counts and empty lists do not appear."""
    return {k: v for k, v in usage.items() if v}


# -------------------------------------------------------------------------------------------- format


class GeminiFormat:
    """`WireFormat` for the Gemini API."""

    name = "gemini"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        if not request.headers.get("x-goog-api-key", "").strip() and not request.query.get("key", "").strip():
            raise SimError(403, _error_body(403, _MISSING_KEY))

    def model_of(self, request: web.Request, body: Any) -> str | None:
        model = request.match_info.get("model")
        return model.removeprefix("models/") if model else None

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return SimError(status, _error_body(status, message))

    def invalid_json(self) -> SimError:
        return _invalid("Invalid JSON payload received. Unexpected token.")

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        message = _STATUS_MESSAGES.get(status, f"Error {status} (simulated).").replace("{model}", model)
        details: list[dict[str, Any]] = []
        if status == 429:
            details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "1000"}]})
            details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
        if retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"})
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        return SimError(status, _error_body(status, message, details), headers)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> GeminiExchange:
        if not model:
            raise SimError(404, _error_body(404, "Requested entity was not found."))
        parsed = _validate(request, body, model)
        self._serial += 1
        return GeminiExchange(parsed, behaviour, self._serial)


GEMINI = GeminiFormat()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
