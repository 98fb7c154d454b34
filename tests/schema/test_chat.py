"""The chat request checks: every documented parameter's type and range, messages, and derived fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.chat import PARAMETERS, parse_chat_request
from crossroads.schema.request import ProviderPreferences, Reasoning

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
    request = parse(temperature=None, stop=None, tools=None, safe_prompt=None)
    assert "temperature" not in request.params and "stop" not in request.params and not request.tools
    assert "safe_prompt" not in request.extra


def test_unknown_fields_are_kept_for_providers_that_take_them() -> None:
    request = parse(safe_prompt=True, temperature=0.5)
    assert request.extra == {"safe_prompt": True} and request.params == {"temperature": 0.5}


def test_model_defaults_and_fallback_list() -> None:
    assert parse().models == ("default/model",)
    assert parse(model="a/b", models=["c/d", "a/b"]).models == ("a/b", "c/d")


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
    assert request.messages == [{"role": "user", "content": "hello"}]


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
    assert request.messages[-1]["role"] == "assistant"


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidParameter):
        parse_chat_request([1, 2], "d/m")


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, Reasoning()),
    ({"reasoning": {}}, Reasoning()),
    ({"include_reasoning": False}, Reasoning(exclude=True)),
    ({"include_reasoning": True}, Reasoning(enabled=True)),
    ({"reasoning_effort": "high"}, Reasoning(enabled=True, effort="high")),
    ({"reasoning": {"effort": "low"}, "reasoning_effort": "low"}, Reasoning(enabled=True, effort="low")),
    ({"reasoning": {"enabled": True}}, Reasoning(enabled=True, effort="medium")),
    ({"reasoning": {"enabled": True, "max_tokens": 3000}}, Reasoning(enabled=True, max_tokens=3000)),
    ({"reasoning": {"max_tokens": 2000, "exclude": True}}, Reasoning(enabled=True, max_tokens=2000, exclude=True)),
    ({"reasoning": {"exclude": True}}, Reasoning(enabled=True, exclude=True)),
    ({"reasoning": {"effort": "high"}, "include_reasoning": False}, Reasoning(enabled=True, effort="high",
                                                                             exclude=True)),
    ({"reasoning": {"enabled": False, "effort": "high"}}, Reasoning(enabled=False, effort="high")),
    ({"reasoning_effort": "none"}, Reasoning(enabled=False, effort="none")),
    ({"reasoning": {"max_tokens": 2000}, "reasoning_effort": "none"}, Reasoning(enabled=False, effort="none",
                                                                                max_tokens=2000)),
])
def test_reasoning_settings_are_reconciled_once(fields: dict[str, Any], expected: Reasoning) -> None:
    assert parse(**fields).reasoning == expected


def test_provider_preferences_are_typed_and_their_shorthands_resolved() -> None:
    assert parse().provider == ProviderPreferences()
    prefs = parse(provider={"order": ["a", "b"], "sort": {"by": "latency", "partition": "none"},
                            "max_price": {"prompt": "1.5", "completion": 2}, "preferred_min_throughput": 50,
                            "preferred_max_latency": {"p90": 3, "p50": 1}, "allow_fallbacks": False,
                            "require_parameters": True, "quantizations": ["fp8"]}, temperature=0.2).provider
    assert prefs.order == ("a", "b") and prefs.quantizations == ("fp8",)
    assert prefs.sort == "latency" and prefs.sort_partition == "none"
    assert prefs.max_price == (("prompt", Decimal("1.5")), ("completion", Decimal(2)))
    assert prefs.preferred_min_throughput == ((0.5, 50),)
    assert prefs.preferred_max_latency == ((0.9, 3), (0.5, 1))
    assert not prefs.allow_fallbacks and prefs.require_parameters
    assert parse(provider={"sort": "price"}).provider.sort == "price"


def test_null_provider_preferences_read_as_absent() -> None:
    """The spec makes each field nullable; a null list once reached `tuple(None)` (a 500 found by fuzzing)."""
    nulls = dict.fromkeys(("order", "only", "ignore", "quantizations", "sort", "max_price", "zdr", "allow_fallbacks",
                           "data_collection", "preferred_min_throughput", "preferred_max_latency",
                           "require_parameters"))
    assert parse(provider=nulls).provider == ProviderPreferences()


def test_required_parameters_are_what_the_client_set() -> None:
    assert parse(temperature=0.2).required == frozenset()
    request = parse(provider={"require_parameters": True}, temperature=0.2, safe_prompt=True, max_tokens=5,
                    reasoning={"effort": "low"}, user="u")
    assert request.required == {"temperature", "safe_prompt", "max_tokens", "reasoning", "user"}


@pytest.mark.parametrize(("provider", "message"), [
    ({"preferred_max_latency": -1}, "provider.preferred_max_latency: must be at least 0, got -1"),
    ({"preferred_min_throughput": {"p90": -0.5}},
     "provider.preferred_min_throughput.p90: must be at least 0, got -0.5"),
])
def test_a_number_bounded_below_only_says_so(provider: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(provider=provider)
    assert str(caught.value.public_message()) == message
