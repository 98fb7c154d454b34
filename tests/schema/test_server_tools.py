"""Web search asked for as a tool, read into the `web` plugin: OpenRouter's `openrouter:web_search`, OpenAI's
shorthands (chat and Responses) and Anthropic's `web_search_20250305` (Messages)."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import parse_chat_request
from crossroads.schema.messages import parse_messages_request
from crossroads.schema.request import ChatRequest, Plugin
from crossroads.schema.responses import parse_responses_request

FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def chat(**body: Any) -> ChatRequest:
    return parse_chat_request({"model": "m/x", "messages": [{"role": "user", "content": "news?"}], **body}, "d/m")


def test_openrouter_web_search_becomes_the_web_plugin() -> None:
    request = chat(tools=[FUNCTION, {"type": "openrouter:web_search", "parameters": {
        "engine": "exa", "max_results": 8, "max_total_results": 3, "allowed_domains": ["a.org"], "max_uses": 2,
        "search_context_size": "high", "user_location": {"type": "approximate", "city": "Oslo"}}}])
    assert request.tools == [FUNCTION] and request.params["tools"] == [FUNCTION]
    oslo = {"type": "approximate", "approximate": {"city": "Oslo"}}
    assert request.plugins == (Plugin(id="web", tool=True, options={
        "engine": "exa", "max_results": 3, "include_domains": ["a.org"], "max_uses": 2,
        "search_context_size": "high", "user_location": oslo}),)


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview", "web_search_2025_08_26"])
def test_openai_shorthands_are_hoisted(kind: str) -> None:
    request = chat(tools=[{"type": kind, "search_context_size": "low", "engine": "auto"}],
                   tool_choice={"type": kind})
    assert request.tools == [] and "tools" not in request.params and request.tool_choice is None
    assert request.plugins == (Plugin(id="web", tool=True, options={"search_context_size": "low"}),)


def test_a_web_plugin_in_plugins_keeps_its_settings() -> None:
    request = chat(tools=[{"type": "openrouter:web_search"}], plugins=[{"id": "web", "engine": "native"}])
    assert request.plugins == (Plugin(id="web", options={"engine": "native"}),)


@pytest.mark.parametrize(("tool", "path"), [
    ({"type": "openrouter:web_search", "parameters": {"allowed_domains": ["a"], "excluded_domains": ["b"]}},
     "tools[0].parameters"),
    ({"type": "openrouter:web_search", "parameters": {"max_results": 0}}, "tools[0].parameters.max_results"),
    ({"type": "openrouter:web_search", "parameters": {"search_context_size": "huge"}},
     "tools[0].parameters.search_context_size"),
    ({"type": "openrouter:web_search", "parameters": {"colour": 1}}, "tools[0].parameters.colour"),
    ({"type": "web_search", "filters": {"allowed_domains": "a.org"}}, "tools[0].filters.allowed_domains"),
])
def test_bad_settings_name_the_field(tool: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        chat(tools=[tool])
    assert caught.value.param == path


def test_responses_take_the_web_search_tool() -> None:
    request = parse_responses_request({"model": "m/x", "input": "news?", "tools": [
        {"type": "web_search", "filters": {"allowed_domains": ["a.org"]}}], "tool_choice": "auto"}, "d/m")
    assert request.plugins == (Plugin(id="web", tool=True, options={"include_domains": ["a.org"]}),)
    assert request.tools == [] and request.tool_choice is None
    assert request.echo["tools"] == [{"type": "web_search", "filters": {"allowed_domains": ["a.org"]}}]


def test_messages_web_search_is_the_web_plugin_and_no_longer_needs_the_messages_api() -> None:
    request = parse_messages_request({"model": "m/x", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}],
                                      "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2,
                                                 "blocked_domains": ["b.org"]}]}, "d/m")
    assert request.plugins == (Plugin(id="web", tool=True, options={"max_uses": 2, "exclude_domains": ["b.org"]}),)
    assert request.native is not None and request.native.needs == ()


def test_messages_other_server_tools_still_need_the_messages_api() -> None:
    request = parse_messages_request({"model": "m/x", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}],
                                      "tools": [{"type": "web_search_20250305", "name": "web_search"},
                                                {"type": "code_execution_20250825", "name": "code_execution"}]}, "d/m")
    assert request.native is not None and request.native.needs == ("server tools",)


def test_responses_skip_an_earlier_turns_web_search_call() -> None:
    request = parse_responses_request({"model": "m/x", "tools": [{"type": "web_search"}], "input": [
        {"role": "user", "content": "news?"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "news"}},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "See [a.org](https://a.org).", "annotations": [
                {"type": "url_citation", "url": "https://a.org", "title": "a", "start_index": 4, "end_index": 9}]}]},
        {"role": "user", "content": "more?"}]}, "d/m")
    assert [m["role"] for m in request.messages] == ["user", "assistant", "user"]
