"""The Anthropic Messages adapter: what reaches Anthropic, and how its replies, streams and errors come back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from crossroads.catalog.types import DataPolicy, Endpoint, Features, Pricing, Provider
from crossroads.errors import UpstreamError
from crossroads.providers.anthropic_messages import PARAMS, AnthropicMessages
from crossroads.providers.anthropic_messages.params import JSON_TOOL
from crossroads.providers.base import Unsupported
from crossroads.schema.chat import parse_chat_request

ADAPTER = AnthropicMessages()
_TAGS = iter(range(1_000_000))
CLAUDE = Features(tools=True, reasoning=True, seed=False)
SEARCHES = Features(tools=True, reasoning=True, seed=False, web_search=True)
NATIVE_JSON = Features(tools=True, reasoning=True, seed=False, response_format=True, structured_outputs=True)
USER = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def endpoint(features: Features = CLAUDE, cap: int | None = 64000, key: str | None = "sk-ant") -> Endpoint:
    provider = Provider(slug="anthropic", name="Anthropic", wire_format="anthropic_messages",
                        base_url="https://api.anthropic.com", api_key=key, data_policy=DataPolicy())
    return Endpoint(model_id="anthropic/claude", provider=provider, tag=f"anthropic/{next(_TAGS)}",
                    upstream_model="claude-sonnet-4-5-20250929", context_length=200000, max_completion_tokens=cap,
                    max_prompt_tokens=None, quantization=None,
                    pricing=Pricing(prompt=Decimal("0.000003"), completion=Decimal("0.000015")),
                    features=features, input_modalities=frozenset({"text", "image", "file"}))


def sent(body: dict[str, Any], target: Endpoint | None = None) -> dict[str, Any]:
    request = parse_chat_request({"model": "anthropic/claude", "messages": USER, **body}, "anthropic/claude")
    upstream = ADAPTER.build_request(request, target or endpoint())
    data: dict[str, Any] = orjson.loads(upstream.body)
    return data


# -- request -------------------------------------------------------------------------------------------------


def test_request_url_headers_and_minimal_body() -> None:
    request = parse_chat_request({"model": "anthropic/claude", "messages": USER}, "anthropic/claude")
    upstream = ADAPTER.build_request(request, endpoint())
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers["x-api-key"] == "sk-ant"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["content-type"] == "application/json"
    assert orjson.loads(upstream.body) == {"model": "claude-sonnet-4-5-20250929", "max_tokens": 64000,
                                           "messages": [{"role": "user", "content": "hi"}]}


def test_max_tokens_from_request_else_endpoint_else_default() -> None:
    assert sent({"max_tokens": 100})["max_tokens"] == 100
    assert sent({"max_completion_tokens": 70})["max_tokens"] == 70
    assert sent({})["max_tokens"] == 64000
    assert sent({}, endpoint(cap=None))["max_tokens"] == 4096


def test_system_and_developer_messages_move_to_the_top_level() -> None:
    body = sent({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                              {"role": "developer", "content": "Use French."}]})
    assert body["system"] == "Be brief.\n\nUse French."
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    cached = sent({"messages": [{"role": "system", "content": [
        {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}, *USER]})
    assert cached["system"] == [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral",
                                                                                          "ttl": "1h"}}]


def test_turns_alternate_starting_with_user() -> None:
    body = sent({"messages": [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "a"},
                              {"role": "user", "content": "b"}, {"role": "assistant", "content": "ok  "}]})
    assert body["messages"] == [
        {"role": "user", "content": "."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "ok"},  # a prefilled last turn may not end in whitespace
    ]


def test_tool_calls_and_results_round_trip_with_the_same_ids() -> None:
    messages = [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Snow"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "10:00"}]},
        {"role": "user", "content": "thanks"},
    ]
    body = sent({"messages": messages, "tools": [WEATHER]})
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Snow"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "10:00"}]},
        {"type": "text", "text": "thanks"}]}


def test_tool_results_come_first_in_their_turn() -> None:
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "hurry"}, {"role": "tool", "tool_call_id": "t1", "content": "done"}]
    turn = sent({"messages": messages})["messages"][2]["content"]
    assert [block["type"] for block in turn] == ["tool_result", "text"]


def test_unparseable_tool_arguments_are_a_400() -> None:
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]
    with pytest.raises(UpstreamError) as caught:
        sent({"messages": messages})
    assert caught.value.code == 400 and not caught.value.fallback_worthy


def test_simple_parameters() -> None:
    body = sent({"stop": "END", "user": "u-42", "top_k": 5, "temperature": 0.3})
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["top_k"] == 5 and body["temperature"] == 0.3
    assert sent({"stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]


def test_temperature_wins_over_top_p() -> None:
    assert "top_p" not in sent({"temperature": 0.5, "top_p": 0.9})
    assert sent({"top_p": 0.9})["top_p"] == 0.9


def test_parameters_anthropic_lacks_are_dropped() -> None:
    body = sent({"frequency_penalty": 1, "presence_penalty": 1, "repetition_penalty": 1.1, "seed": 3,
                 "logit_bias": {"1": 2}, "logprobs": True, "top_logprobs": 2, "min_p": 0.1, "top_a": 0.1, "n": 2,
                 "metadata": {"a": "b"}, "service_tier": "auto", "verbosity": "low", "unknown_field": 1,
                 "provider": {"order": ["x"]}, "usage": {"include": True}})
    assert set(body) == {"model", "max_tokens", "messages"}


def test_supported_parameters_come_from_the_table() -> None:
    names = ADAPTER.supported_parameters(endpoint())
    unsupported = {name for name, row in PARAMS.items() if isinstance(row, Unsupported)}
    assert names == set(PARAMS) - unsupported - {"web_search_options"}  # an endpoint feature
    assert "web_search_options" in ADAPTER.supported_parameters(endpoint(SEARCHES))
    assert "structured_outputs" not in names and "response_format" in names
    assert "structured_outputs" in ADAPTER.supported_parameters(endpoint(NATIVE_JSON))
    plain = ADAPTER.supported_parameters(endpoint(Features()))
    assert not plain & {"tools", "tool_choice", "response_format", "reasoning", "reasoning_effort"}
    body = sent({"tools": [WEATHER], "reasoning": {"effort": "high"}}, endpoint(Features()))
    assert "tools" not in body and "thinking" not in body


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_tools_and_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = sent({"tools": [WEATHER], "tool_choice": choice})
    assert body["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}}}]
    assert body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use_in_either_order() -> None:
    assert sent({"tools": [WEATHER], "parallel_tool_calls": False})["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}
    assert sent({"parallel_tool_calls": False, "tools": [WEATHER], "tool_choice": "required"})["tool_choice"] == {
        "type": "any", "disable_parallel_tool_use": True}
    assert sent({"tools": [WEATHER], "tool_choice": "none", "parallel_tool_calls": False})["tool_choice"] == {
        "type": "none"}
    assert "tool_choice" not in sent({"tool_choice": "auto"})  # only with tools


def test_tool_schemas_are_objects_and_strict_needs_structured_outputs() -> None:
    tool = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"properties": {}}},
            "cache_control": {"type": "ephemeral"}}
    assert sent({"tools": [tool]})["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}},
                                                 "cache_control": {"type": "ephemeral"}}]
    assert sent({"tools": [tool]}, endpoint(NATIVE_JSON))["tools"][0]["strict"] is True


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA}}


def test_structured_output_is_native_where_the_catalog_says_so() -> None:
    body = sent({"response_format": JSON_SCHEMA}, endpoint(NATIVE_JSON))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body


def test_structured_output_elsewhere_is_a_forced_tool() -> None:
    body = sent({"response_format": JSON_SCHEMA})
    assert "output_config" not in body
    assert body["tools"] == [{"name": JSON_TOOL, "description": body["tools"][0]["description"],
                              "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    json_object = sent({"response_format": {"type": "json_object"}}, endpoint(NATIVE_JSON))
    assert json_object["tools"][0]["input_schema"] == {"type": "object"}
    with_tools = sent({"response_format": JSON_SCHEMA, "tools": [WEATHER]})
    assert [tool["name"] for tool in with_tools["tools"]] == ["get_weather", JSON_TOOL]
    assert with_tools["tool_choice"] == {"type": "any"}  # a tool, or the answer through the JSON tool
    assert "tools" not in sent({"response_format": {"type": "text"}})


@pytest.mark.parametrize(("effort", "budget"), [
    ("max", 7600), ("xhigh", 7600), ("high", 6400), ("medium", 4000), ("low", 1600), ("minimal", 1024),
])
def test_effort_becomes_a_thinking_budget(effort: str, budget: int) -> None:
    body = sent({"max_tokens": 8000, "reasoning": {"effort": effort}})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 8000
    assert sent({"max_tokens": 8000, "reasoning_effort": effort})["thinking"] == body["thinking"]


def test_thinking_budget_limits() -> None:
    assert sent({"reasoning": {"effort": "high"}})["thinking"]["budget_tokens"] == 51200  # 0.8 × endpoint cap
    assert sent({"reasoning": {"effort": "max"}}, endpoint(cap=200000))["thinking"]["budget_tokens"] == 128000
    assert sent({"reasoning": {"max_tokens": 500}, "max_tokens": 3000})["thinking"]["budget_tokens"] == 1024
    raised = sent({"reasoning": {"max_tokens": 5000}, "max_tokens": 1000})
    assert raised["thinking"]["budget_tokens"] == 5000 and raised["max_tokens"] == 6000
    capped = sent({"reasoning": {"max_tokens": 5000}, "max_tokens": 1000}, endpoint(cap=5500))
    assert capped["max_tokens"] == 5500 and capped["thinking"]["budget_tokens"] == 5000
    squeezed = sent({"reasoning": {"max_tokens": 9000}}, endpoint(cap=4000))
    assert squeezed["max_tokens"] == 4000 and squeezed["thinking"]["budget_tokens"] == 3999
    assert "thinking" not in sent({"reasoning": {"max_tokens": 2000}}, endpoint(cap=1000))


@pytest.mark.parametrize("body", [
    {}, {"reasoning": {"effort": "none"}}, {"reasoning": {"enabled": False}}, {"reasoning_effort": "none"},
    {"include_reasoning": False}, {"reasoning": {"max_tokens": 0}},
    # Reasoning is enabled by an effort or a budget, never by an empty object; "none" turns it off.
    {"reasoning": {}}, {"reasoning": {"max_tokens": 2000}, "reasoning_effort": "none"},
])
def test_no_thinking_unless_asked(body: dict[str, Any]) -> None:
    assert "thinking" not in sent(body)


def test_thinking_defaults_and_exclusion() -> None:
    assert sent({"max_tokens": 4000, "include_reasoning": True})["thinking"]["budget_tokens"] == 2000
    assert sent({"max_tokens": 4000, "reasoning": {"enabled": True}})["thinking"]["budget_tokens"] == 2000
    excluded = sent({"max_tokens": 4000, "reasoning": {"effort": "low", "exclude": True}})
    assert excluded["thinking"] == {"type": "enabled", "budget_tokens": 1024, "display": "omitted"}
    legacy = sent({"max_tokens": 4000, "reasoning_effort": "low", "include_reasoning": False})
    assert legacy["thinking"] == excluded["thinking"]


def test_thinking_drops_sampling_parameters() -> None:
    body = sent({"reasoning": {"effort": "low"}, "temperature": 0.2, "top_p": 0.5, "top_k": 3})
    assert "thinking" in body and not {"temperature", "top_p", "top_k"} & set(body)


def test_no_thinking_with_a_forced_tool() -> None:
    body = sent({"reasoning": {"effort": "low"}, "tools": [WEATHER], "tool_choice": "required", "temperature": 0.2})
    assert "thinking" not in body and body["temperature"] == 0.2
    assert "thinking" not in sent({"reasoning": {"effort": "low"}, "response_format": JSON_SCHEMA})
    native = sent({"reasoning": {"effort": "low"}, "response_format": JSON_SCHEMA}, endpoint(NATIVE_JSON))
    assert "thinking" in native and "output_config" in native


TOOL_LOOP = [
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "toolu_1", "content": "Snow"},
]


def test_thinking_goes_back_before_the_turn_text_and_tool_use() -> None:
    details = [{"type": "reasoning.text", "text": "Let me look.", "signature": "sig-1", "format": "anthropic-claude-v1",
                "index": 0},
               {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1", "index": 1},
               {"type": "reasoning.text", "text": "unsigned", "index": 2},
               {"type": "reasoning.summary", "summary": "s", "index": 3},
               {"type": "reasoning.text", "text": "other", "signature": "x", "format": "openai-responses-v1",
                "index": 4}]
    loop = [TOOL_LOOP[0], {**TOOL_LOOP[1], "content": "Looking.", "reasoning_details": details}, TOOL_LOOP[2]]
    body = sent({"messages": loop, "tools": [WEATHER], "reasoning": {"effort": "low"}})
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me look.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]
    assert "thinking" in body


def test_streamed_reasoning_fragments_are_joined_per_block() -> None:
    fragments = [{"type": "reasoning.text", "text": "Let ", "format": "anthropic-claude-v1", "index": 0},
                 {"type": "reasoning.text", "text": "me look.", "format": "anthropic-claude-v1", "index": 0},
                 {"type": "reasoning.text", "text": "", "signature": "sig-1", "format": "anthropic-claude-v1",
                  "index": 0}]
    loop = [TOOL_LOOP[0], {**TOOL_LOOP[1], "reasoning_details": fragments}, TOOL_LOOP[2]]
    body = sent({"messages": loop, "tools": [WEATHER], "reasoning": {"effort": "low"}})
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "Let me look.",
                                                 "signature": "sig-1"}


def test_no_thinking_in_a_tool_loop_that_lost_its_thinking_blocks() -> None:
    assert "thinking" not in sent({"messages": TOOL_LOOP, "tools": [WEATHER], "reasoning": {"effort": "low"}})
    finished = [*TOOL_LOOP, {"role": "assistant", "content": "Snowy."}, {"role": "user", "content": "and now?"}]
    assert "thinking" in sent({"messages": finished, "tools": [WEATHER], "reasoning": {"effort": "low"}})


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def test_images_and_documents() -> None:
    parts = [
        {"type": "text", "text": "Compare these", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}},
        {"type": "file", "file": {"file_data": "https://example.com/b.pdf"}},
        {"type": "file", "file": {"filename": "notes.txt", "file_data": "data:text/plain,hello%20there"}},
    ]
    content = sent({"messages": [{"role": "user", "content": parts}]})["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "Compare these", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG},
         "cache_control": {"type": "ephemeral"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="},
         "title": "a.pdf"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/b.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello there"},
         "title": "notes.txt"},
    ]


@pytest.mark.parametrize("part", [
    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    {"type": "file", "file": {"file_id": "file-1"}},
    {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}},
])
def test_content_anthropic_cannot_take_is_a_400(part: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError) as caught:
        sent({"messages": [{"role": "user", "content": [part]}]})
    assert caught.value.code == 400


def test_top_level_cache_control_and_streaming() -> None:
    body = sent({"cache_control": {"type": "ephemeral"}, "stream": True})
    assert body["cache_control"] == {"type": "ephemeral"} and body["stream"] is True


def test_the_clients_body_is_not_modified() -> None:
    raw = {"model": "anthropic/claude", "messages": [{"role": "system", "content": "s"}, *TOOL_LOOP],
           "tools": [WEATHER], "response_format": JSON_SCHEMA, "reasoning": {"effort": "low"}}
    before = orjson.dumps(raw)
    request = parse_chat_request(raw, "anthropic/claude")
    parsed = orjson.dumps([request.messages, request.params])
    first = ADAPTER.build_request(request, endpoint())
    assert ADAPTER.build_request(request, endpoint()).body == first.body
    assert orjson.dumps([request.messages, request.params]) == parsed
    assert orjson.dumps(raw) == before


# -- replies -------------------------------------------------------------------------------------------------


def reply(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: Any) -> bytes:
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": content,
                         "stop_reason": stop_reason, "stop_sequence": None,
                         "usage": {"input_tokens": 10, "output_tokens": 5, **usage}})


def test_text_reply() -> None:
    completion = ADAPTER.parse_response(reply([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]),
                                        endpoint())
    choice = completion.choices[0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there", "refusal": None, "reasoning": None}
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "end_turn")
    assert completion.upstream_id == "msg_1"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) \
        == (10, 5)


def test_tool_use_reply() -> None:
    completion = ADAPTER.parse_response(reply([
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}], "tool_use"), endpoint())
    message = completion.choices[0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    assert completion.choices[0]["finish_reason"] == "tool_calls"


def test_thinking_reply() -> None:
    completion = ADAPTER.parse_response(reply([
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Yes."}], output_tokens_details={"thinking_tokens": 3}), endpoint())
    message = completion.choices[0]["message"]
    assert message["reasoning"] == "Hmm." and message["content"] == "Yes."
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Hmm.", "signature": "sig", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1", "index": 1}]
    assert completion.usage is not None and completion.usage.reasoning_tokens == 3


def test_json_tool_reply_is_plain_content() -> None:
    completion = ADAPTER.parse_response(reply([{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"a": 1}}],
                                              "tool_use"), endpoint())
    choice = completion.choices[0]
    assert choice["message"]["content"] == '{"a":1}' and "tool_calls" not in choice["message"]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "tool_use")
    with_text = ADAPTER.parse_response(reply([{"type": "text", "text": "Here it is:"},
                                              {"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"a": 1}}],
                                             "tool_use"), endpoint())
    assert with_text.choices[0]["message"]["content"] == '{"a":1}'


@pytest.mark.parametrize(("native", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
])
def test_finish_reasons(native: str, finish: str) -> None:
    choice = ADAPTER.parse_response(reply([{"type": "text", "text": "x"}], native), endpoint()).choices[0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (finish, native)


def test_usage_counts_cached_tokens_in_the_prompt() -> None:
    completion = ADAPTER.parse_response(reply([{"type": "text", "text": "x"}], cache_read_input_tokens=100,
                                              cache_creation_input_tokens=50,
                                              cache_creation={"ephemeral_5m_input_tokens": 20,
                                                              "ephemeral_1h_input_tokens": 30}), endpoint())
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 160
    assert (usage.cached_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (100, 20, 30)
    plain = ADAPTER.parse_response(reply([], cache_creation_input_tokens=7), endpoint()).usage
    assert plain is not None and (plain.prompt_tokens, plain.cache_write_tokens, plain.cache_write_1h_tokens) \
        == (17, 7, None)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"content": "x"}', b'{"content": ["x"]}'])
def test_malformed_replies_are_502(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.parse_response(body, endpoint())
    assert caught.value.code == 502 and caught.value.fallback_worthy


# -- errors --------------------------------------------------------------------------------------------------


def error_body(kind: str, message: str = "boom") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(("status", "kind", "code", "fallback"), [
    (400, "invalid_request_error", 400, False),
    (401, "authentication_error", 502, True),
    (402, "billing_error", 502, True),
    (403, "permission_error", 502, True),
    (404, "not_found_error", 404, True),
    (413, "request_too_large", 413, False),
    (429, "rate_limit_error", 429, True),
    (500, "api_error", 500, True),
    (504, "timeout_error", 504, True),
    (529, "overloaded_error", 503, True),
])
def test_error_statuses(status: int, kind: str, code: int, fallback: bool) -> None:
    error = ADAPTER.parse_error(status, error_body(kind), {}, endpoint())
    assert error.code == code and error.upstream_status == status and error.fallback_worthy is fallback
    assert error.payload()["metadata"]["provider_code"] == kind
    assert "boom" in error.message


def test_overloaded_is_a_503_provider_overloaded_with_retry_after() -> None:
    error = ADAPTER.parse_error(529, error_body("overloaded_error", "Overloaded"), {"retry-after": "7"}, endpoint())
    payload = error.payload()
    assert payload["code"] == 503 and payload["metadata"]["error_type"] == "provider_overloaded"
    assert error.retry_after == 7 and error.headers["Retry-After"] == "7"


def test_errors_without_an_anthropic_body() -> None:
    error = ADAPTER.parse_error(502, b"<html>bad gateway</html>", {}, endpoint())
    assert error.code == 502 and error.payload()["metadata"]["raw"] == "<html>bad gateway</html>"


# -- streams -------------------------------------------------------------------------------------------------


def events(*items: tuple[str, dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(name, orjson.dumps({"type": name, **payload})) for name, payload in items]


def run(stream: Any, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for name, data in items:
        chunks.extend(stream.feed(name, data))
    chunks.extend(stream.close())
    return chunks


def translator(body: dict[str, Any] | None = None) -> Any:
    request = parse_chat_request({"messages": USER, "stream": True, **(body or {})}, "anthropic/claude")
    return ADAPTER.stream_translator(request, endpoint())


START = ("message_start", {"message": {"id": "msg_9", "type": "message", "role": "assistant", "content": [],
                                       "model": "claude", "stop_reason": None,
                                       "usage": {"input_tokens": 12, "cache_read_input_tokens": 4,
                                                 "cache_creation_input_tokens": 0, "output_tokens": 1}}})


def test_text_stream() -> None:
    stream = translator()
    chunks = run(stream, events(
        START, ("ping", {}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 9}}),
        ("message_stop", {})))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas == [{"role": "assistant", "content": "Hel"}, {"content": "lo"}, {}]
    last = chunks[-1]["choices"][0]
    assert (last["finish_reason"], last["native_finish_reason"]) == ("stop", "end_turn")
    assert stream.finish_reason == "stop" and stream.upstream_id == "msg_9" and stream.completion_chars == 5
    assert stream.usage is not None
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens, stream.usage.cached_tokens) == (16, 9, 4)


def test_nothing_is_sent_before_content() -> None:
    assert run(translator(), events(START, ("ping", {}))) == []


def test_tool_call_stream_keeps_one_index_per_call() -> None:
    stream = translator()
    chunks = run(stream, events(
        START,
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_a",
                                                               "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}}),
        ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_b",
                                                               "name": "get_time", "input": {}}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}})))
    calls = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", ())]
    assert calls == [
        {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        {"index": 0, "function": {"arguments": '"Oslo"}'}},
        {"index": 1, "function": {"arguments": "{}"}},
    ]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream.finish_reason == "tool_calls"


def test_thinking_stream() -> None:
    stream = translator({"reasoning": {"effort": "low"}})
    chunks = run(stream, events(
        START,
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
        ("content_block_start", {"index": 2, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "text_delta", "text": "Yes"}}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 20, "output_tokens_details": {"thinking_tokens": 12}}})))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[0] == {"role": "assistant", "reasoning": "Hmm", "reasoning_details": [
        {"type": "reasoning.text", "text": "Hmm", "format": "anthropic-claude-v1", "index": 0}]}
    assert deltas[1] == {"reasoning_details": [
        {"type": "reasoning.text", "text": "", "signature": "sig", "format": "anthropic-claude-v1", "index": 0}]}
    assert deltas[2] == {"reasoning_details": [
        {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1", "index": 1}]}
    assert deltas[3] == {"content": "Yes"}
    assert stream.usage is not None and stream.usage.reasoning_tokens == 12


def test_excluded_thinking_text_is_not_passed_on() -> None:
    chunks = run(translator({"reasoning": {"effort": "low", "exclude": True}}), events(
        START,
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "secret"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "sig"}})))
    assert "secret" not in orjson.dumps(chunks).decode() and "sig" in orjson.dumps(chunks).decode()


def test_json_tool_streams_as_content() -> None:
    stream = translator()
    chunks = run(stream, events(
        START,
        ("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "t", "name": JSON_TOOL,
                                                               "input": {}}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}})))
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks] == ['{"a":', "1}", None]
    assert stream.finish_reason == "stop" and stream.native_finish_reason == "tool_use"


def test_error_event_raises() -> None:
    stream = translator()
    run(stream, events(START, ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})))
    with pytest.raises(UpstreamError) as caught:
        stream.feed("error", error_body("overloaded_error", "Overloaded"))
    assert caught.value.code == 503 and caught.value.upstream_status == 529
    with pytest.raises(UpstreamError) as rate:
        stream.feed("error", error_body("rate_limit_error"))
    assert rate.value.code == 429
    with pytest.raises(UpstreamError) as unknown:
        stream.feed("error", error_body("something_new"))
    assert unknown.value.code == 502


def test_malformed_event_raises_502() -> None:
    with pytest.raises(UpstreamError) as caught:
        translator().feed("content_block_delta", b'{"type":"content_block_delta","index":0,"delta":{')
    assert caught.value.code == 502


def test_a_stream_without_a_stop_reason_is_unfinished() -> None:
    stream = translator()
    run(stream, events(START, ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": "x"}})))
    assert stream.finish_reason is None


def test_web_search_options_become_the_web_search_server_tool() -> None:
    options = {"max_uses": 3, "allowed_domains": ["example.org"], "blocked_domains": ["ignored.example"],
               "user_location": {"type": "approximate", "approximate": {"city": "Lyon", "country": "FR"}},
               "search_context_size": "high"}
    body = sent({"web_search_options": options, "tools": [WEATHER]}, endpoint(SEARCHES))
    search, weather = body["tools"]  # in the client's order of the parameters
    assert search == {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
                                 "allowed_domains": ["example.org"],
                                 "user_location": {"type": "approximate", "city": "Lyon", "country": "FR"}}
    assert weather["name"] == WEATHER["function"]["name"]
    assert "tools" not in sent({"web_search_options": {}})  # an endpoint without the feature: dropped


def test_web_search_citations_become_annotations_and_searches_usage() -> None:
    cite = {"type": "web_search_result_location", "url": "https://a.example/x", "title": "A",
            "cited_text": "a fact", "encrypted_index": "Eo1"}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
               "content": [
                   {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                   {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                   {"type": "text", "text": "Intro. "},
                   {"type": "text", "text": "A fact.", "citations": [cite, {"type": "char_location"}]}],
               "usage": {"input_tokens": 10, "output_tokens": 5, "server_tool_use": {"web_search_requests": 2}}}
    completion = ADAPTER.parse_response(orjson.dumps(message), endpoint(SEARCHES))
    reply = completion.choices[0]["message"]
    assert reply["content"] == "Intro. A fact."
    assert reply["annotations"] == [{"type": "url_citation", "url_citation": {
        "url": "https://a.example/x", "title": "A", "content": "a fact", "start_index": 7, "end_index": 14}}]
    assert completion.usage is not None and completion.usage.web_search_requests == 2
