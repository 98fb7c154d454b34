"""The Gemini adapter: what reaches the Gemini API for each request parameter and message, and how replies,
streams and errors come back."""

from __future__ import annotations

import base64
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import InvalidParameter, UpstreamError
from crossroads.providers.base import Keep, supported
from crossroads.providers.gemini import PARAMS, Gemini
from crossroads.providers.gemini.convert import thinking_config
from crossroads.providers.gemini.schema import to_gemini_schema
from crossroads.schema.chat import PUBLISHED_PARAMETERS, parse_chat_request
from crossroads.schema.request import Reasoning

ADAPTER = Gemini()
_TAGS = iter(range(1_000_000))
FULL = Features(tools=True, response_format=True, structured_outputs=True, logprobs=True, reasoning=True)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


def endpoint(model: str = "gemini-2.5-flash", features: Features = FULL, max_output: int | None = 65536) -> Endpoint:
    provider = Provider(slug="google-ai-studio", name="Google AI Studio", wire_format="gemini",
                        base_url="https://generativelanguage.googleapis.com", api_key="g-key",
                        data_policy=DataPolicy())
    return Endpoint(model_id="google/m", provider=provider, tag=f"google/{next(_TAGS)}", upstream_model=model,
                    context_length=1_048_576, max_completion_tokens=max_output, max_prompt_tokens=None,
                    quantization=None, pricing=Pricing(prompt=Decimal("0.000001"), completion=Decimal("0.000002")),
                    features=features, input_modalities=frozenset({"text", "image", "file"}))


def sent(body: dict[str, Any], target: Endpoint | None = None) -> dict[str, Any]:
    body = {"model": "google/m", "messages": [{"role": "user", "content": "hi"}], **body}
    upstream = ADAPTER.build_request(parse_chat_request(body, "google/m"), target or endpoint())
    data: dict[str, Any] = orjson.loads(upstream.body)
    return data


def parsed(response: dict[str, Any]) -> dict[str, Any]:
    completion = ADAPTER.parse_response(orjson.dumps(response), endpoint())
    return {"choices": completion.choices, "usage": completion.usage, "id": completion.upstream_id}


def reply(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": list(parts), "role": "model"}, "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            "modelVersion": "gemini-2.5-flash", "responseId": "resp-1", **extra}


# -- the request ---------------------------------------------------------------------------------------------


def test_url_auth_and_body() -> None:
    target = endpoint("gemini-2.5-flash#status=429;retry_after=3")
    request = parse_chat_request({"model": "google/m", "messages": [{"role": "user", "content": "hi"}]}, "google/m")
    upstream = ADAPTER.build_request(request, target)
    assert upstream.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                            "gemini-2.5-flash%23status%3D429%3Bretry_after%3D3:generateContent")
    assert upstream.headers["x-goog-api-key"] == "g-key" and "Authorization" not in upstream.headers
    assert orjson.loads(upstream.body) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    stream = parse_chat_request({"model": "google/m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                                "google/m")
    assert ADAPTER.build_request(stream, endpoint()).url.endswith("/models/gemini-2.5-flash:streamGenerateContent"
                                                                 "?alt=sse")
    plain = endpoint()
    versioned = replace(plain, provider=replace(plain.provider, base_url="https://proxy.example.com/gemini/v1/"))
    assert ADAPTER.build_request(request, versioned).url == ("https://proxy.example.com/gemini/v1/models/"
                                                             "gemini-2.5-flash:generateContent")


def test_generation_config_from_the_table() -> None:
    body = sent({"temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 300, "stop": "END", "n": 2,
                 "presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 7, "logprobs": True, "top_logprobs": 3})
    assert body["generationConfig"] == {
        "temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 300, "stopSequences": ["END"],
        "candidateCount": 2, "presencePenalty": 0.5, "frequencyPenalty": -0.5, "seed": 7, "responseLogprobs": True,
        "logprobs": 3}


def test_parameters_gemini_lacks_are_dropped_and_gateway_fields_never_sent() -> None:
    body = sent({"logit_bias": {"1": 2}, "repetition_penalty": 1.1, "min_p": 0.1, "top_a": 0.2, "user": "u",
                 "parallel_tool_calls": False, "provider": {"order": ["x"]}, "usage": {"include": True},
                 "some_unknown_field": 1})
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_supported_parameters_come_from_the_table() -> None:
    names = ADAPTER.supported_parameters(endpoint())
    assert names == supported(PARAMS, FULL)
    assert {"temperature", "top_k", "tools", "tool_choice", "response_format", "structured_outputs", "reasoning",
            "include_reasoning", "logprobs", "seed", "stop"} <= names
    assert not names & {"logit_bias", "repetition_penalty", "min_p", "top_a", "parallel_tool_calls", "user"}
    plain = ADAPTER.supported_parameters(endpoint(features=Features(reasoning=False)))
    assert not plain & {"tools", "reasoning", "response_format", "logprobs"}
    assert not any(isinstance(row, Keep) for row in PARAMS.values())  # every row says where it goes
    assert set(PARAMS) >= PUBLISHED_PARAMETERS - {"structured_outputs"}


def test_response_format_becomes_json_mode_with_an_openapi_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    body = sent({"response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}})
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}
    assert sent({"response_format": {"type": "json_object"}})["generationConfig"] == {
        "responseMimeType": "application/json"}
    assert "generationConfig" not in sent({"response_format": {"type": "text"}})


def test_tools_and_tool_choice() -> None:
    no_args = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    body = sent({"tools": [WEATHER, no_args], "tool_choice": "required"})
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather in a city",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
        {"name": "now"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent({"tools": [WEATHER], "tool_choice": "auto"})["toolConfig"]["functionCallingConfig"]["mode"] == "AUTO"
    assert sent({"tools": [WEATHER], "tool_choice": "none"})["toolConfig"]["functionCallingConfig"]["mode"] == "NONE"
    named = sent({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    assert named["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert "toolConfig" not in sent({"tool_choice": "auto"})  # no declarations: no calling mode either


@pytest.mark.parametrize(("reasoning", "expected"), [
    ({"reasoning": {"max_tokens": 2000}}, {"thinkingBudget": 2000, "includeThoughts": True}),
    ({"reasoning": {"effort": "high"}}, {"thinkingBudget": 24576, "includeThoughts": True}),  # the flash limit
    ({"reasoning": {"effort": "low"}, "max_tokens": 10000}, {"thinkingBudget": 2000, "includeThoughts": True}),
    ({"reasoning": {"effort": "minimal"}, "max_tokens": 4000}, {"thinkingBudget": 1024, "includeThoughts": True}),
    ({"reasoning_effort": "medium", "max_tokens": 8000}, {"thinkingBudget": 4000, "includeThoughts": True}),
    ({"reasoning": {"enabled": True}, "max_tokens": 8000}, {"thinkingBudget": 4000, "includeThoughts": True}),
    ({"reasoning": {"effort": "high", "exclude": True}, "max_tokens": 10000}, {"thinkingBudget": 8000}),
    ({"reasoning": {"effort": "none"}}, {"thinkingBudget": 0}),
    ({"reasoning": {"enabled": False}}, {"thinkingBudget": 0}),
    ({"include_reasoning": True}, {"includeThoughts": True}),
])
def test_reasoning_becomes_a_thinking_config(reasoning: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sent(reasoning)["generationConfig"]["thinkingConfig"] == expected


def test_thinking_budget_limits_per_model() -> None:
    most = Reasoning(enabled=True, effort="max")
    assert thinking_config(most, 65536, "gemini-2.5-pro") == {"thinkingBudget": 32768, "includeThoughts": True}
    assert thinking_config(most, 200000, "gemini-3-pro-preview") == {"thinkingBudget": 128000,
                                                                       "includeThoughts": True}
    assert thinking_config(Reasoning(), 1000, "gemini-2.5-pro") is None
    assert "generationConfig" not in sent({"reasoning": {"effort": "high"}}, endpoint(features=Features()))


def test_system_messages_roles_and_merging() -> None:
    body = sent({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Again"}], "name": "ann"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "No."}]})
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric units."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}, {"text": "ann: Again"}]},
        {"role": "model", "parts": [{"text": "Hi!"}, {"text": "Anything else?"}]},
        {"role": "user", "parts": [{"text": "No."}]}]


def test_images_files_audio_and_video() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    body = sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2", "detail": "high"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "file", "file": {"file_data": "https://example.com/paper.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/no-extension"}}]}]})
    assert body["contents"][0]["parts"] == [
        {"text": "Look"},
        {"inlineData": {"mimeType": "image/png", "data": png}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg?size=2"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/paper.pdf"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"fileData": {"mimeType": "video/mp4", "fileUri": "https://example.com/clip.mp4"}},
        {"fileData": {"fileUri": "https://example.com/no-extension"}}]


def _tool_round(details: list[dict[str, Any]] | None = None, result: Any = "Sunny") -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}
    if details is not None:
        assistant["reasoning_details"] = details
    return [{"role": "user", "content": "Weather and time in Paris?"}, assistant,
            {"role": "tool", "tool_call_id": "call_1", "content": result},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "10:00"}]}]


def test_tool_calls_and_results_become_function_parts() -> None:
    body = sent({"messages": _tool_round()})
    assert body["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                                    {"functionCall": {"name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "Sunny"}}},
                                   {"functionResponse": {"name": "get_time", "response": {"result": "10:00"}}}]}]
    as_json = sent({"messages": _tool_round(result='{"sky": "clear", "c": 21}')})
    assert as_json["contents"][2]["parts"][0]["functionResponse"]["response"] == {"sky": "clear", "c": 21}
    as_list = sent({"messages": _tool_round(result="[1, 2]")})
    assert as_list["contents"][2]["parts"][0]["functionResponse"]["response"] == {"result": "[1, 2]"}


def test_a_tool_result_without_its_call_is_rejected() -> None:
    messages = [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nowhere", "content": "y"}]
    with pytest.raises(InvalidParameter) as caught:
        sent({"messages": messages})
    assert caught.value.param == "messages[1].tool_call_id"
    named = sent({"messages": [*messages[:1], {**messages[1], "name": "lookup"}]})
    assert named["contents"][0]["parts"][1] == {"functionResponse": {"name": "lookup", "response": {"result": "y"}}}
    bad = _tool_round()
    bad[1]["tool_calls"][0]["function"]["arguments"] = "[1]"
    with pytest.raises(InvalidParameter):
        sent({"messages": bad})


def test_thought_signatures_go_back_to_their_parts() -> None:
    details = [
        {"type": "reasoning.text", "text": "Thinking...", "format": "google-gemini-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "c2lnLTE=", "id": "call_1", "format": "google-gemini-v1", "index": 1},
        {"type": "reasoning.encrypted", "data": "b3RoZXI=", "format": "anthropic-claude-v1", "index": 2},
        {"type": "reasoning.encrypted", "data": "bm8gZm9ybWF0", "id": "call_2", "index": 3}]
    model_turn = sent({"messages": _tool_round(details)})["contents"][1]
    assert model_turn["parts"][0] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                      "thoughtSignature": "c2lnLTE="}
    assert "thoughtSignature" not in model_turn["parts"][1]
    text_turn = sent({"messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_details": [
            {"type": "reasoning.encrypted", "data": "dHVybg==", "id": None, "format": "google-gemini-v1"}]},
        {"role": "user", "content": "c"}]})["contents"][1]
    assert text_turn == {"role": "model", "parts": [{"text": "b", "thoughtSignature": "dHVybg=="}]}


def test_gemini_3_gets_the_documented_placeholder_for_a_call_without_signature() -> None:
    model_turn = sent({"messages": _tool_round()}, endpoint("gemini-3-pro-preview"))["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in model_turn["parts"][1]


# -- schemas -------------------------------------------------------------------------------------------------


def test_schema_conversion_keeps_what_the_subset_can_say() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]},
                  "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "Temperature unit"},
            "note": {"anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]},
            "count": {"type": ["integer", "null"], "exclusiveMinimum": 0, "maximum": 10, "multipleOf": 2},
            "kind": {"const": "report"},
            "level": {"enum": [1, 2, 3]},
            "either": {"oneOf": [{"type": "string"}, {"type": "number", "format": "float"}]},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email", "pattern": "^.+@.+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
            "tree": {"$ref": "#/$defs/Node"},
            "merged": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                                 {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
            "free": {"type": "object", "additionalProperties": {"type": "string"}},
            "anything": {},
        },
        "required": ["unit", "missing"],
        "additionalProperties": False,
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "unit": {"description": "Temperature unit", "type": "STRING", "enum": ["c", "f"]},
            "note": {"type": "STRING", "maxLength": 20, "nullable": True},
            "count": {"type": "INTEGER", "nullable": True, "minimum": 0, "maximum": 10},
            "kind": {"type": "STRING", "enum": ["report"]},
            "level": {"description": "Allowed values: 1, 2, 3.", "type": "INTEGER"},
            "either": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER", "format": "float"}]},
            "when": {"type": "STRING", "format": "date-time"},
            "email": {"type": "STRING", "pattern": "^.+@.+$"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1},
            "pair": {"type": "ARRAY", "items": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}},
            "tree": {"type": "OBJECT", "properties": {"child": {"type": "OBJECT"}}},
            "merged": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
                       "required": ["a", "b"]},
            "free": {"type": "OBJECT"},
            "anything": {"type": "STRING"},
        },
        "required": ["unit"],
    }


def test_schema_conversion_never_fails() -> None:
    for odd in (None, [], "x", {"type": 3}, {"$ref": "#/nowhere"}, {"$ref": "https://example.com/s.json"},
                {"anyOf": [{"type": "null"}]}, {"type": ["null"]}, {"items": [{"type": "string"}]}):
        assert "type" in to_gemini_schema(odd) or "anyOf" in to_gemini_schema(odd)


# -- replies -------------------------------------------------------------------------------------------------


def test_text_reply_and_usage() -> None:
    result = parsed(reply({"text": "Hello "}, {"text": "there"}))
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there", "refusal": None, "reasoning": None}
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"] == "STOP"
    assert result["id"] == "resp-1"
    usage = result["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.cached_tokens) == (10, 5, None,
                                                                                                          None)


def test_thoughts_signatures_and_thinking_usage() -> None:
    response = reply({"text": "Let me think.", "thought": True}, {"text": " More.", "thought": True},
                     {"text": "Answer", "thoughtSignature": "c2ln"})
    response["usageMetadata"] = {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 30,
                                 "cachedContentTokenCount": 4, "totalTokenCount": 45,
                                 "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 6}]}
    result = parsed(response)
    message = result["choices"][0]["message"]
    assert message["content"] == "Answer" and message["reasoning"] == "Let me think. More."
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Let me think. More.", "format": "google-gemini-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "c2ln", "id": None, "format": "google-gemini-v1", "index": 1}]
    usage = result["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.cached_tokens,
            usage.audio_prompt_tokens) == (10, 35, 30, 4, 6)


def test_function_calls_get_stable_ids_and_signatures_tied_to_them() -> None:
    response = reply({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                     {"functionCall": {"name": "get_time", "args": {}}},
                     {"functionCall": {"id": "native-7", "name": "get_date"}})
    first, second = parsed(response)["choices"][0], parsed(response)["choices"][0]
    assert first == second  # derived from the response id: the same reply always gets the same ids
    calls = first["message"]["tool_calls"]
    assert [c["function"] for c in calls] == [{"name": "get_weather", "arguments": '{"city":"Paris"}'},
                                              {"name": "get_time", "arguments": "{}"},
                                              {"name": "get_date", "arguments": "{}"}]
    assert calls[0]["id"].startswith("call_") and calls[0]["id"] != calls[1]["id"] and calls[2]["id"] == "native-7"
    assert first["message"]["content"] is None
    assert first["message"]["reasoning_details"] == [
        {"type": "reasoning.encrypted", "data": "c2ln", "id": calls[0]["id"], "format": "google-gemini-v1",
         "index": 0}]
    assert first["finish_reason"] == "tool_calls" and first["native_finish_reason"] == "STOP"


@pytest.mark.parametrize(("native", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "stop"),
    ("FINISH_REASON_UNSPECIFIED", "stop"),
])
def test_finish_reasons(native: str, expected: str) -> None:
    choice = parsed(reply({"text": "x"}, finish=native))["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (expected, native)


def test_candidates_images_and_logprobs() -> None:
    response = {
        "candidates": [
            {"content": {"parts": [{"text": "A"}], "role": "model"}, "finishReason": "STOP", "index": 0,
             "logprobsResult": {"chosenCandidates": [{"token": "A", "logProbability": -0.5}],
                                "topCandidates": [{"candidates": [{"token": "A", "logProbability": -0.5},
                                                                  {"token": "B", "logProbability": -1.5}]}]}},
            {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}], "role": "model"},
             "finishReason": "STOP", "index": 1}],
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}
    first, second = parsed(response)["choices"]
    assert first["logprobs"] == {"refusal": None, "content": [
        {"token": "A", "logprob": -0.5, "bytes": [65], "top_logprobs": [
            {"token": "A", "logprob": -0.5, "bytes": [65]}, {"token": "B", "logprob": -1.5, "bytes": [66]}]}]}
    assert second["index"] == 1
    assert second["message"]["images"] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]
    assert parsed(response)["usage"].completion_tokens == 0  # zero counts are left out of Gemini's JSON


def test_a_blocked_prompt_is_a_content_policy_error() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}
    with pytest.raises(UpstreamError) as caught:
        parsed(body)
    error = caught.value
    assert error.code == 400 and not error.fallback_worthy
    assert error.payload()["metadata"]["error_type"] == "content_policy_violation"
    assert error.payload()["metadata"]["provider_code"] == "SAFETY"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"candidates": []}', b'{"candidates": "x"}'])
def test_malformed_replies(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response(body, endpoint())
    assert caught.value.code == 502


# -- errors --------------------------------------------------------------------------------------------------


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> UpstreamError:
    return ADAPTER.parse_error(status, orjson.dumps(body), headers or {}, endpoint())


def test_rate_limit_with_retry_info() -> None:
    error = _error(429, {"error": {"code": 429, "message": "You exceeded your current quota",
                                   "status": "RESOURCE_EXHAUSTED", "details": [
                                       {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}]}})
    assert error.code == 429 and error.fallback_worthy and error.retry_after == 36
    assert error.headers["Retry-After"] == "36"
    metadata = error.payload()["metadata"]
    assert metadata["provider_code"] == "RESOURCE_EXHAUSTED" and metadata["error_type"] == "rate_limit_exceeded"
    assert metadata["raw"]["message"] == "You exceeded your current quota"
    assert _error(429, {"error": {"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"}},
                  {"retry-after": "2"}).retry_after == 2


@pytest.mark.parametrize(("status", "name", "code", "worthy"), [
    (400, "INVALID_ARGUMENT", 400, False),
    (400, "FAILED_PRECONDITION", 502, True),  # "User location is not supported": the gateway's account
    (401, "UNAUTHENTICATED", 502, True),
    (403, "PERMISSION_DENIED", 502, True),
    (404, "NOT_FOUND", 404, True),
    (500, "INTERNAL", 500, True),
    (503, "UNAVAILABLE", 503, True),
    (504, "DEADLINE_EXCEEDED", 504, True),
])
def test_error_statuses(status: int, name: str, code: int, worthy: bool) -> None:
    error = _error(status, {"error": {"code": status, "message": "m", "status": name}})
    assert (error.code, error.fallback_worthy, error.upstream_status >= 400) == (code, worthy, True)
    assert error.payload()["metadata"]["provider_code"] == name


def test_an_invalid_api_key_is_the_gateways_problem_and_context_overflow_is_named() -> None:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    key = _error(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                 "status": "INVALID_ARGUMENT", "details": [info]}})
    assert key.code == 502 and key.fallback_worthy
    long = _error(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                  "The input token count (1200000) exceeds the maximum number of tokens allowed "
                                  "(1048576)."}})
    assert long.payload()["metadata"]["error_type"] == "context_length_exceeded"
    opaque = ADAPTER.parse_error(502, b"<html>Bad gateway</html>", {}, endpoint())
    assert opaque.code == 502 and opaque.payload()["metadata"]["raw"] == "<html>Bad gateway</html>"


# -- streams -------------------------------------------------------------------------------------------------


def _feed(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    translator = ADAPTER.stream_translator(parse_chat_request(
        {"model": "google/m", "stream": True, "messages": [{"role": "user", "content": "x"}]}, "google/m"), endpoint())
    pieces: list[dict[str, Any]] = []
    for event in events:
        pieces.extend(translator.feed(None, orjson.dumps(event)))
    pieces.extend(translator.close())
    return pieces, translator


def _event(*parts: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) \
        -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage or {"promptTokenCount": 4, "totalTokenCount": 4},
            "responseId": "r-9"}


def test_text_stream() -> None:
    pieces, translator = _feed([
        _event({"text": "Thinking", "thought": True}),
        _event({"text": " hard", "thought": True}),
        _event({"text": "Hel", "thoughtSignature": "c2ln"}),
        _event({"text": "lo"}),
        _event({"text": ""}, finish="STOP", usage={"promptTokenCount": 4, "candidatesTokenCount": 2,
                                                   "thoughtsTokenCount": 7, "totalTokenCount": 13})])
    deltas = [p["choices"][0]["delta"] for p in pieces]
    assert deltas[0] == {"role": "assistant", "reasoning": "Thinking", "reasoning_details": [
        {"type": "reasoning.text", "text": "Thinking", "format": "google-gemini-v1", "index": 0}]}
    assert deltas[1]["reasoning_details"][0]["index"] == 0  # the same text entry, continued
    assert deltas[2] == {"content": "Hel", "reasoning_details": [
        {"type": "reasoning.encrypted", "data": "c2ln", "id": None, "format": "google-gemini-v1", "index": 1}]}
    assert deltas[3] == {"content": "lo"} and deltas[4] == {}
    assert [p["choices"][0]["finish_reason"] for p in pieces] == [None, None, None, None, "stop"]
    assert pieces[-1]["choices"][0]["native_finish_reason"] == "STOP"
    assert translator.finish_reason == "stop" and translator.upstream_id == "r-9"
    assert translator.usage.completion_tokens == 9 and translator.usage.reasoning_tokens == 7
    assert translator.completion_chars == 5


def test_function_calls_arrive_whole() -> None:
    pieces, translator = _feed([
        _event({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
               {"functionCall": {"name": "get_time", "args": {}}}, finish="STOP")])
    choice = pieces[0]["choices"][0]
    calls = choice["delta"]["tool_calls"]
    assert [(c["index"], c["type"], c["function"]) for c in calls] == [
        (0, "function", {"name": "get_weather", "arguments": '{"city":"Oslo"}'}),
        (1, "function", {"name": "get_time", "arguments": "{}"})]
    assert choice["delta"]["role"] == "assistant" and choice["finish_reason"] == "tool_calls"
    assert choice["delta"]["reasoning_details"][0]["id"] == calls[0]["id"]
    # The same response id gives the same ids as the non-streamed reply would.
    whole = parsed({**_event({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}, finish="STOP")})
    assert whole["choices"][0]["message"]["tool_calls"][0]["id"] == calls[0]["id"]
    assert translator.native_finish_reason == "STOP"


def test_stream_errors() -> None:
    with pytest.raises(UpstreamError) as caught:
        _feed([_event({"text": "a"}), {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}])
    assert caught.value.code == 500 and caught.value.payload()["metadata"]["provider_code"] == "INTERNAL"
    with pytest.raises(UpstreamError) as blocked:
        _feed([{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}])
    assert blocked.value.payload()["metadata"]["error_type"] == "content_policy_violation"
    translator = ADAPTER.stream_translator(parse_chat_request(
        {"model": "google/m", "stream": True, "messages": [{"role": "user", "content": "x"}]}, "google/m"), endpoint())
    with pytest.raises(UpstreamError) as malformed:
        translator.feed(None, b'{"candidates": [{"content": {')
    assert malformed.value.code == 502


def test_a_stream_without_a_finish_reason_is_unfinished() -> None:
    _, translator = _feed([_event({"text": "partial"})])
    assert translator.finish_reason is None  # dispatch reports this as a broken stream
