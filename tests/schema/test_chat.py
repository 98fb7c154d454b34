"""The chat request checks: every documented parameter's type and range, messages, and derived fields."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import PARAMETERS, parse_chat_request

MESSAGES = [{"role": "user", "content": "hi"}]


def parse(**fields: Any) -> Any:
    return parse_chat_request({"messages": [dict(m) for m in MESSAGES], **fields}, "default/model")


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("temperature", [0, 1.0, 2], [-0.1, 2.01, "1", True]),
    ("top_p", [0, 0.5, 1], [-0.01, 1.5]),
    ("top_k", [0, 40], [-1, 1.5, "x"]),
    ("frequency_penalty", [-2, 0, 2], [-2.5, 3]),
    ("presence_penalty", [-2, 2], [2.1]),
    ("repetition_penalty", [0, 1, 2], [-1, 2.5]),
    ("min_p", [0, 1], [1.1]),
    ("top_a", [0, 1], [-0.2]),
    ("seed", [0, -5, 42], [1.5, "7"]),
    ("max_tokens", [1, 100, 100.0], [0, -1, 1.5]),
    ("max_completion_tokens", [1], [0]),
    ("logit_bias", [{"50256": -100}, {}], [{"1": 101}, [1]]),
    ("logprobs", [True, False], [1, "yes"]),
    ("stop", ["\n", ["a", "b"]], [["a", "b", "c", "d", "e"], 5]),
    ("response_format", [{"type": "json_object"}, {"type": "text"}], [{"type": "yaml"}, "json"]),
    ("tools", [[{"type": "function", "function": {"name": "f"}}]], [[{"type": "function"}], {}]),
    ("tool_choice", ["auto", "none", "required"], ["sometimes", 3]),
    ("parallel_tool_calls", [False], ["no"]),
    ("verbosity", ["low", "medium", "high"], ["loud"]),
    ("reasoning", [{"effort": "high"}, {"max_tokens": 2000}, {"exclude": True}], [{"effort": "huge"}, []]),
    ("reasoning_effort", ["minimal", "none"], ["ultra"]),
    ("stream", [True], ["true"]),
    ("user", ["u-1"], [5]),
    ("metadata", [{"a": "b"}], [{"a": 1}, {f"k{i}": "v" for i in range(17)}]),
    ("provider", [{"order": ["openai"], "allow_fallbacks": False}], [{"order": "openai"}, {"nonsense": 1}]),
    ("models", [["a/b", "c/d"]], ["a/b", [1]]),
])
def test_each_parameter_takes_its_documented_values(name: str, good: list[Any], bad: list[Any]) -> None:
    assert name in PARAMETERS
    for value in good:
        parse(**{name: value})
    for value in bad:
        with pytest.raises(InvalidParameter) as caught:
            parse(**{name: value})
        assert caught.value.param.startswith(name), caught.value.param


def test_null_means_absent() -> None:
    request = parse(temperature=None, stop=None, tools=None)
    assert "temperature" not in request.body and "stop" not in request.body


def test_unknown_fields_are_kept_for_providers_that_take_them() -> None:
    assert parse(safe_prompt=True).body["safe_prompt"] is True


def test_model_defaults_and_fallback_list() -> None:
    assert parse().models == ["default/model"]
    assert parse(model="a/b", models=["c/d", "a/b"]).models == ["a/b", "c/d"]


def test_max_output_prefers_max_completion_tokens() -> None:
    assert parse(max_tokens=10, max_completion_tokens=20).max_output == 20
    assert parse(max_tokens=10).max_output == 10


def test_top_logprobs_requires_logprobs() -> None:
    with pytest.raises(InvalidParameter, match="top_logprobs"):
        parse(top_logprobs=3)
    parse(top_logprobs=3, logprobs=True)


def test_conflicting_reasoning_effort_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="reasoning_effort"):
        parse(reasoning={"effort": "low"}, reasoning_effort="high")
    with pytest.raises(InvalidParameter, match="reasoning"):
        parse(reasoning={"effort": "low", "max_tokens": 100})


def test_legacy_prompt_becomes_a_user_message() -> None:
    request = parse_chat_request({"prompt": "hello"}, "d/m")
    assert request.body["messages"] == [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(("messages", "path"), [
    ([], "messages"),
    ("hi", "messages"),
    ([{"role": "user"}], "messages[0].content"),
    ([{"role": "robot", "content": "x"}], "messages[0].role"),
    ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
    ([{"role": "user", "content": [{"type": "picture"}]}], "messages[0].content[0].type"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content[0].image_url.url"),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
    ([{"role": "assistant", "content": None}, {"role": "user", "content": "x"}], "messages[0].content"),
    ([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}], "content": None}],
     "messages[0].tool_calls[0].id"),
])
def test_bad_messages_name_their_path(messages: Any, path: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_chat_request({"messages": messages}, "d/m")
    assert caught.value.param == path


def test_content_parts_are_noticed() -> None:
    request = parse_chat_request({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}},
    ]}]}, "d/m")
    assert request.has_images and request.has_files and not request.has_audio


def test_assistant_prefill_may_be_last_with_content() -> None:
    request = parse_chat_request({"messages": [{"role": "user", "content": "Say a number"},
                                               {"role": "assistant", "content": "The number is"}]}, "d/m")
    assert request.body["messages"][-1]["role"] == "assistant"


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidParameter):
        parse_chat_request([1, 2], "d/m")
