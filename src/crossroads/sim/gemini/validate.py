"""Gemini request checks, the way the API checks them (Gemini API reference and the troubleshooting guide's
error table): unknown fields, empty `contents` or `parts`, bad roles and parts, out-of-range
`generationConfig` values, `Schema` objects outside Gemini's OpenAPI subset, function responses that answer
no call, and missing thought signatures on `gemini-3*`. `check_request` turns a valid body into `Request`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from ..tools import pair_answers
from . import proto
from .errors import bad_value, field_error, invalid

__all__ = ["Request", "check_request"]

MAX_CANDIDATES: Final = 8
MAX_STOP_SEQUENCES: Final = 5
MAX_LOGPROBS: Final = 20
MAX_THINKING_BUDGET: Final = 32768
SIGNATURE_REQUIRED: Final = ("gemini-3",)
"""Models that reject a function call of the current turn sent back without its thought signature."""

_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_ROLES: Final = ("user", "model")
_MIME_TYPES: Final = ("text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum")
_MODES: Final = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_TYPES: Final = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
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


@dataclass(slots=True)
class Request:
    """A valid request (field names made camelCase), as the plan and the rendering need it."""

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
    #: A `google_search` tool was given ("Grounding with Google Search").
    google_search: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    include_thoughts: bool = False
    thinking_budget: int | None = None


def check_request(request: web.Request, body: Any, model: str) -> Request:
    data = proto.message(body, _REQUEST, "", "GenerateContentRequest")
    stream = request.path.endswith(":streamGenerateContent")
    parsed = Request(model=model, stream=stream, sse=request.query.get("alt") == "sse",
                     contents=_contents(data.get("contents")))
    if data.get("systemInstruction") is not None:
        parsed.system = _system(data["systemInstruction"])
    if data.get("tools") is not None:
        parsed.functions = _tools(data["tools"])
        parsed.google_search = any(proto.message(tool, _TOOL, "tools", "Tool").get("googleSearch") is not None
                                   for tool in data["tools"])
    if data.get("toolConfig") is not None:
        parsed.mode, parsed.allowed = _tool_config(data["toolConfig"], parsed.functions)
    for i, setting in enumerate(proto.repeated(data.get("safetySettings") or [], "safety_settings")):
        proto.message(setting, _SAFETY_SETTING, f"safety_settings[{i}]", "SafetySetting")
    if data.get("cachedContent") is not None:
        proto.string(data["cachedContent"], "cached_content")
    if data.get("generationConfig") is not None:
        _generation_config(data["generationConfig"], parsed)
    _check_turns(parsed.contents, model)
    return parsed


def _contents(value: Any) -> list[dict[str, Any]]:
    if value is None or value == []:
        raise field_error("contents", "contents is not specified")
    contents = []
    for i, raw in enumerate(proto.repeated(value, "contents")):
        where = f"contents[{i}]"
        content = proto.message(raw, _CONTENT, where, "Content")
        role = content.get("role") or "user"
        if role not in _ROLES:
            raise invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise field_error(f"{where}.parts", "contents.parts must not be empty.")
        contents.append({"role": role, "parts": [_part(p, f"{where}.parts[{j}]")
                                                 for j, p in enumerate(proto.repeated(parts, f"{where}.parts"))]})
    return contents


def _part(value: Any, where: str) -> dict[str, Any]:
    part = proto.message(value, _PART, where, "Part")
    present = [name for name in _PART_DATA if name in part]
    if not present:
        raise field_error(f"{where}.data", "required oneof field 'data' must have one initialized field")
    if len(present) > 1:
        raise invalid(f"Invalid JSON payload received. Oneof field 'data' is already set. "
                      f"Cannot set '{present[1]}'")
    kind = present[0]
    at = proto.join(where, kind)
    if kind == "text":
        proto.string(part["text"], at)
    elif kind == "inlineData":
        blob = part["inlineData"] = proto.message(part["inlineData"], _BLOB, at, "Blob")
        if not blob.get("mimeType"):
            raise field_error(f"{at}.mime_type", "mime_type is required")
        proto.base64_bytes(blob.get("data", ""), f"{at}.data")
    elif kind == "fileData":
        file = part["fileData"] = proto.message(part["fileData"], _FILE_DATA, at, "FileData")
        if not file.get("fileUri"):
            raise field_error(f"{at}.file_uri", "file_uri is required")
    elif kind == "functionCall":
        call = part["functionCall"] = proto.message(part["functionCall"], _FUNCTION_CALL, at, "FunctionCall")
        if not call.get("name"):
            raise field_error(f"{at}.name", "Name cannot be empty.")
        if call.get("args") is not None and not isinstance(call["args"], dict):
            raise bad_value(f"{at}.args", "type.googleapis.com/google.protobuf.Struct", call["args"])
    elif kind == "functionResponse":
        response = part["functionResponse"] = proto.message(part["functionResponse"], _FUNCTION_RESPONSE, at,
                                                            "FunctionResponse")
        if not response.get("name"):
            raise field_error(f"{at}.name", "Name cannot be empty.")
        if not isinstance(response.get("response"), dict):
            raise bad_value(f"{at}.response", "type.googleapis.com/google.protobuf.Struct", response.get("response"))
    if "thought" in part:
        proto.boolean(part["thought"], f"{where}.thought")
    if "thoughtSignature" in part:
        proto.base64_bytes(part["thoughtSignature"], f"{where}.thought_signature")
    return part


def _system(value: Any) -> list[str]:
    content = proto.message(value, _CONTENT, "system_instruction", "Content")
    texts = []
    for j, raw in enumerate(proto.repeated(content.get("parts") or [], "system_instruction.parts")):
        part = _part(raw, f"system_instruction.parts[{j}]")
        if "text" not in part:
            raise field_error(f"system_instruction.parts[{j}]", "system instruction parts must be text")
        texts.append(part["text"])
    return texts


def _schema(value: Any, where: str) -> dict[str, Any]:
    """Check a `Schema` (Gemini's OpenAPI subset); return the JSON Schema it means, for generating values."""
    schema = proto.message(value, _SCHEMA, where, "Schema")
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind is not None:
        if not isinstance(kind, str) or kind.upper() not in _TYPES:
            raise bad_value(f"{where}.type", "type.googleapis.com/google.ai.generativelanguage.v1beta.Type", kind)
        if kind.upper() not in ("TYPE_UNSPECIFIED", "NULL"):
            out["type"] = kind.lower()
    if "enum" in schema:
        values = proto.repeated(schema["enum"], f"{where}.enum")
        for k, item in enumerate(values):
            proto.string(item, f"{where}.enum[{k}]")
        out["enum"] = values
    for name in _INT64_FIELDS:
        if name in schema:
            out[name] = proto.integer(schema[name], proto.join(where, name), "TYPE_INT64")
    for name in ("minimum", "maximum"):
        if name in schema:
            out[name] = proto.number(schema[name], proto.join(where, name))
    for name in ("format", "title", "description", "pattern"):
        if name in schema:
            out[name] = proto.string(schema[name], proto.join(where, name))
    if "nullable" in schema:
        proto.boolean(schema["nullable"], f"{where}.nullable")
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            raise bad_value(f"{where}.properties", "map", properties)
        out["properties"] = {name: _schema(sub, f"{where}.properties[{name}]") for name, sub in properties.items()}
    for name in ("required", "propertyOrdering"):
        if name in schema:
            names = [proto.string(item, f"{proto.join(where, name)}[{k}]")
                     for k, item in enumerate(proto.repeated(schema[name], proto.join(where, name)))]
            if name == "required":
                out["required"] = names
    if "items" in schema:
        out["items"] = _schema(schema["items"], f"{where}.items")
    if "anyOf" in schema:
        out["anyOf"] = [_schema(sub, f"{where}.any_of[{k}]")
                        for k, sub in enumerate(proto.repeated(schema["anyOf"], f"{where}.any_of"))]
    return out


def _tools(value: Any) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = []
    for i, raw in enumerate(proto.repeated(value, "tools")):
        tool = proto.message(raw, _TOOL, f"tools[{i}]", "Tool")
        declarations = tool.get("functionDeclarations") or []
        for j, item in enumerate(proto.repeated(declarations, f"tools[{i}].function_declarations")):
            where = f"tools[{i}].function_declarations[{j}]"
            declaration = proto.message(item, _FUNCTION_DECLARATION, where, "FunctionDeclaration")
            name = declaration.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise field_error(f"{where}.name", "Invalid function name. Must start with a letter or an "
                                  "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), "
                                  "colons (:), or dashes (-), with a maximum length of 64.")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise field_error(f"{where}", "parameters and parameters_json_schema cannot both be set.")
            parameters: dict[str, Any] | None = None
            if declaration.get("parameters") is not None:
                parameters = _schema(declaration["parameters"], f"{where}.parameters")
                if parameters.get("type") == "object" and not parameters.get("properties"):
                    raise field_error(f"{where}.parameters.properties", "should be non-empty for OBJECT type")
            elif isinstance(declaration.get("parametersJsonSchema"), dict):
                parameters = declaration["parametersJsonSchema"]
            functions.append({"name": name, "parameters": parameters})
    return functions


def _tool_config(value: Any, functions: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    config = proto.message(value, _TOOL_CONFIG, "tool_config", "ToolConfig")
    calling = proto.message(config.get("functionCallingConfig") or {}, _FUNCTION_CALLING_CONFIG,
                            "tool_config.function_calling_config", "FunctionCallingConfig")
    mode = calling.get("mode", "AUTO")
    if mode not in _MODES:
        raise bad_value("tool_config.function_calling_config.mode",
                        "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode", mode)
    where = "tool_config.function_calling_config.allowed_function_names"
    names = proto.repeated(calling.get("allowedFunctionNames") or [], where)
    allowed = [proto.string(name, f"{where}[{k}]") for k, name in enumerate(names)]
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise field_error(where, "allowed_function_names should only be set when mode is ANY or VALIDATED.")
    declared = {function["name"] for function in functions}
    for name in allowed:
        if name not in declared:
            raise field_error(where, f"function name '{name}' is not declared in tools.")
    return ("AUTO" if mode == "MODE_UNSPECIFIED" else mode), allowed


def _generation_config(value: Any, parsed: Request) -> None:
    where = "generation_config"
    config = proto.message(value, _GENERATION_CONFIG, where, "GenerationConfig")

    def ranged(name: str, low: float, high: float) -> None:
        if name in config:
            number = proto.number(config[name], proto.join(where, name))
            if not low <= number <= high:
                raise field_error(proto.join(where, name), f"must be in the range [{low:g}, {high:g}], got {number:g}.")

    ranged("temperature", 0, 2)
    ranged("topP", 0, 1)
    ranged("presencePenalty", -2, 2)
    ranged("frequencyPenalty", -2, 2)
    if "topK" in config and proto.number(config["topK"], f"{where}.top_k") < 1:
        raise field_error(f"{where}.top_k", "must be at least 1.")
    if "seed" in config:
        proto.integer(config["seed"], f"{where}.seed")
    if "candidateCount" in config:
        parsed.candidates = proto.integer(config["candidateCount"], f"{where}.candidate_count")
        if not 1 <= parsed.candidates <= MAX_CANDIDATES:
            raise field_error(f"{where}.candidate_count", f"must be between 1 and {MAX_CANDIDATES}.")
    if "maxOutputTokens" in config:
        parsed.max_tokens = proto.integer(config["maxOutputTokens"], f"{where}.max_output_tokens")
        if parsed.max_tokens < 1:
            raise field_error(f"{where}.max_output_tokens", "must be positive.")
    if "stopSequences" in config:
        stops = proto.repeated(config["stopSequences"], f"{where}.stop_sequences")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise field_error(f"{where}.stop_sequences", f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed.")
        parsed.stops = [proto.string(s, f"{where}.stop_sequences[{k}]") for k, s in enumerate(stops)]
    if "responseLogprobs" in config:
        parsed.logprobs = proto.boolean(config["responseLogprobs"], f"{where}.response_logprobs")
    if "logprobs" in config:
        parsed.top_logprobs = proto.integer(config["logprobs"], f"{where}.logprobs")
        if not 0 <= parsed.top_logprobs <= MAX_LOGPROBS:
            raise field_error(f"{where}.logprobs", f"must be in the range [0, {MAX_LOGPROBS}].")
        if not parsed.logprobs:
            raise field_error(f"{where}.logprobs", "logprobs can only be set when response_logprobs is true.")
    _response_format(config, parsed)
    if config.get("thinkingConfig") is not None:
        thinking = proto.message(config["thinkingConfig"], _THINKING_CONFIG, f"{where}.thinking_config",
                                 "ThinkingConfig")
        if "includeThoughts" in thinking:
            parsed.include_thoughts = proto.boolean(thinking["includeThoughts"],
                                                    f"{where}.thinking_config.include_thoughts")
        if "thinkingBudget" in thinking:
            budget = proto.integer(thinking["thinkingBudget"], f"{where}.thinking_config.thinking_budget")
            if not -1 <= budget <= MAX_THINKING_BUDGET:
                raise invalid(f"The thinking budget {budget} is invalid. Please choose a value between 0 and "
                              f"{MAX_THINKING_BUDGET}, or -1 for a dynamic budget.")
            parsed.thinking_budget = budget


def _response_format(config: Mapping[str, Any], parsed: Request) -> None:
    where = "generation_config"
    mime = config.get("responseMimeType", "text/plain")
    if mime not in _MIME_TYPES:
        raise field_error(f"{where}.response_mime_type", "allowed mimetypes are `text/plain`, `application/json`, "
                          "`application/xml`, `application/yaml` and `text/x.enum`.")
    parsed.mime = mime
    has_schema = config.get("responseSchema") is not None
    has_json_schema = config.get("responseJsonSchema") is not None
    if has_schema and has_json_schema:
        raise field_error(f"{where}.response_schema", "response_schema and response_json_schema cannot both be set.")
    if (has_schema or has_json_schema) and mime not in ("application/json", "text/x.enum"):
        raise field_error(f"{where}.response_mime_type", "response_mime_type must be application/json or "
                          "text/x.enum when a response schema is set.")
    if has_schema:
        parsed.schema = _schema(config["responseSchema"], f"{where}.response_schema")
    elif has_json_schema:
        if not isinstance(config["responseJsonSchema"], dict):
            raise bad_value(f"{where}.response_json_schema", "type.googleapis.com/google.protobuf.Value",
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
                raise invalid("Please ensure that function response turn comes immediately after a function call "
                              "turn.")
            unknown, _ = pair_answers(previous, [name for _, name in responses])
            if unknown is not None:
                j, name = responses[unknown]
                raise field_error(f"contents[{i}].parts[{j}].function_response.name",
                                  f"function response '{name}' answers no function call of the previous turn.")
            if len(responses) != len(previous):
                raise invalid("Please ensure that the number of function response parts is equal to the number of "
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
            raise invalid("Function call is missing a thought_signature in functionCall parts. This is required for "
                          "tools to work correctly, and missing thought_signature may lead to degraded model "
                          "performance. Additional data, function call `default_api:"
                          f"{calls_in[0]['functionCall']['name']}` , position {position}. Please refer to "
                          "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
