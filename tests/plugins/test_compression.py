from __future__ import annotations

from typing import Any

from crossroads.plugins.compression import middle_out


def chars(block: list[dict[str, Any]]) -> int:
    return sum(len(m.get("content") or "") for m in block)


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "S" * 10}]
    for i in range(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"{i:02d}" * 5})
    return messages


def test_a_prompt_that_fits_is_untouched() -> None:
    messages = conversation(4)
    assert middle_out(messages, chars, 10_000) is messages


def test_messages_leave_from_the_middle_keeping_system_first_and_last() -> None:
    messages = conversation(10)  # 10 + 10 × 10 characters
    kept = middle_out(messages, chars, 60)
    assert kept is not None
    assert chars(kept) <= 60
    assert kept[0]["role"] == "system"
    assert kept[1] is messages[1] and kept[-1] is messages[-1]
    removed = [m for m in messages if m not in kept]
    # the middle goes first: the turns nearest the ends survive longest
    assert messages[5] in removed and messages[6] in removed
    assert len(kept) == 6  # system, then 5 of the 10 turns


def test_a_tool_result_leaves_with_its_call() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "u" * 10},
        {"role": "assistant", "content": "a" * 10},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "t" * 50},
        {"role": "user", "content": "v" * 10},
    ]
    kept = middle_out(messages, chars, 40)
    assert kept is not None
    assert [m["role"] for m in kept] == ["user", "assistant", "user"]
    assert all(m.get("tool_calls") is None for m in kept)


def test_none_when_what_must_stay_is_too_long() -> None:
    assert middle_out(conversation(3), chars, 15) is None
