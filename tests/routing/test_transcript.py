"""A stream's transcript: the messages its chunks add up to, as a whole reply would hold them."""

from __future__ import annotations

from crossroads.routing.transcript import Transcript


def test_text_reasoning_and_tool_calls_add_up_per_choice() -> None:
    transcript = Transcript()
    transcript.feed([{"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "Think"}}]},
                     {"choices": [{"index": 0, "delta": {"reasoning": "ing.", "content": "Hel"}},
                                  {"index": 1, "delta": {"content": "Other"}}]}])
    transcript.feed([{"choices": [{"index": 0, "delta": {"content": "lo"}}]},
                     {"choices": [{"index": 0, "delta": {"tool_calls": [
                         {"index": 0, "id": "call_1", "function": {"name": "get_", "arguments": '{"ci'}}]}}]},
                     {"choices": [{"index": 0, "delta": {"tool_calls": [
                         {"index": 0, "function": {"name": "weather", "arguments": 'ty": "Oslo"}'}}]}}]},
                     {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
                      "usage": {"prompt_tokens": 3}}])
    assert transcript.messages() == [
        {"role": "assistant", "content": "Hello", "reasoning": "Thinking.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "assistant", "content": "Other"},
    ]


def test_a_stream_with_no_content_has_an_empty_message() -> None:
    transcript = Transcript()
    transcript.feed([{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, {"choices": []}])
    assert transcript.messages() == [{"role": "assistant", "content": None}]
    assert Transcript().messages() == []
