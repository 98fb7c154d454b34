"""Tool use rules every simulated wire format shares: pairing answers with calls, choosing the tools to call."""

from __future__ import annotations

from crossroads.sim.tools import pair_answers, tools_named

WEATHER = {"name": "get_weather"}
TIME = {"name": "get_time"}


def test_every_call_answered() -> None:
    assert pair_answers(["a", "b"], ["b", "a"]) == (None, [])


def test_an_answer_may_repeat_a_call() -> None:
    assert pair_answers(["a"], ["a", "a"]) == (None, [])


def test_the_first_answer_naming_no_call() -> None:
    assert pair_answers(["a", "b"], ["a", "x", "y"]) == (1, ["b"])


def test_unanswered_calls_in_call_order() -> None:
    assert pair_answers(["c", "a", "b"], ["a"]) == (None, ["c", "b"])
    assert pair_answers([], []) == (None, [])
    assert pair_answers([], ["a"]) == (0, [])


def test_tools_named_in_the_text_in_declaration_order() -> None:
    said = "what is get_time where get_weather is nice?"
    assert tools_named([WEATHER, TIME], said, forced=False) == [WEATHER, TIME]
    assert tools_named([WEATHER, TIME], "use GET_TIME".lower(), forced=False) == [TIME]


def test_no_tool_named() -> None:
    assert tools_named([WEATHER, TIME], "hello", forced=False) == []
    assert tools_named([WEATHER, TIME], "hello", forced=True) == [WEATHER]
    assert tools_named([], "hello", forced=True) == []


def test_without_parallel_calls_only_the_first() -> None:
    said = "get_weather and get_time"
    assert tools_named([TIME, WEATHER], said, forced=False, parallel=False) == [TIME]
    assert tools_named([WEATHER, TIME], "hello", forced=True, parallel=False) == [WEATHER]
