"""The `/messages` request read into the typed `ChatRequest`: each Anthropic block in its Chat Completions form,
the body kept whole for Messages API endpoints, and errors that name the Anthropic field."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.messages import parse_messages_request

CACHE = {"type": "ephemeral"}


def parse(**body: Any) -> Any:
    return parse_messages_request({"model": "m/x", "max_tokens": 100, **body}, "default/model", {})


def test_blocks_become_chat_messages() -> None:
    body = {
        "system": [{"type": "text", "text": "Be brief.", "cache_control": CACHE}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "document", "source": {"type": "url", "url": "https://example.org/a.pdf"}, "title": "a.pdf"},
                {"type": "text", "text": "Look.", "cache_control": CACHE}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "And?"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": True}]},
        ],
    }
    request = parse(**body)
    assert request.messages == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": CACHE}]},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.org/a.pdf"}},
            {"type": "text", "text": "Look.", "cache_control": CACHE}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Calling."}],
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": '{"a":1}'}}],
         "reasoning_details": [
             {"type": "reasoning.text", "text": "Hmm.", "signature": "sig", "format": "anthropic-claude-v1",
              "index": 0},
             {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1", "index": 1}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: boom"},
        {"role": "user", "content": [{"type": "text", "text": "And?"}]},
    ]
    assert request.native is not None and request.native.body["messages"] is body["messages"]
    assert request.native.needs == ()
    assert request.images == 1 and request.has_files


def test_parameters() -> None:
    tool = {"name": "get", "description": "Get it", "input_schema": {"type": "object"}, "cache_control": CACHE}
    request = parse(messages=[{"role": "user", "content": "hi"}], tools=[tool],
                    tool_choice={"type": "any", "disable_parallel_tool_use": True},
                    stop_sequences=["END"], temperature=0.2, top_k=5, metadata={"user_id": "u-1"},
                    thinking={"type": "enabled", "budget_tokens": 2048}, service_tier="standard_only",
                    output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
                    models=["m/y"], provider={"order": ["a"]})
    assert request.models == ("m/x", "m/y") and request.provider.order == ("a",)
    assert request.tools == [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"},
                                                               "description": "Get it"}, "cache_control": CACHE}]
    assert request.tool_choice == "required"
    assert dict(request.params) == {
        "temperature": 0.2, "top_k": 5, "tools": request.tools, "tool_choice": "required",
        "parallel_tool_calls": False, "stop": ["END"], "user": "u-1", "service_tier": "default",
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}},
    }
    assert request.reasoning.max_tokens == 2048 and request.max_output == 100


@pytest.mark.parametrize(("thinking", "effort", "expected"), [
    ({"type": "disabled"}, None, (False, None, None, False)),
    ({"type": "adaptive"}, "high", (True, "high", None, False)),
    ({"type": "adaptive", "display": "omitted"}, None, (True, "medium", None, True)),
])
def test_thinking(thinking: dict[str, Any], effort: str | None, expected: tuple[Any, ...]) -> None:
    config = {"output_config": {"effort": effort}} if effort else {}
    reasoning = parse(thinking=thinking, messages=[{"role": "user", "content": "hi"}], **config).reasoning
    assert (reasoning.enabled, reasoning.effort, reasoning.max_tokens, reasoning.exclude) == expected


def test_server_tools_and_native_fields_are_named() -> None:
    request = parse(messages=[{"role": "user", "content": "hi"}], mcp_servers=[],
                    tools=[{"type": "code_execution_20250825", "name": "code_execution"}])
    assert request.tools == ()
    assert request.native is not None and request.native.needs == ("mcp_servers", "server tools")


def test_beta_header_is_forwarded_under_the_adapters_name() -> None:
    request = parse_messages_request({"model": "m/x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
                                     "d/m", {"anthropic-beta": "b1,b2"})
    assert dict(request.headers) == {"x-anthropic-beta": "b1,b2"}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": None}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
])
def test_errors_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(**body)
    assert caught.value.param == param
