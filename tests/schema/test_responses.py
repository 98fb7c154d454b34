"""The Responses request read into the typed chat request: items to messages, tools, formats, statelessness."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.errors import InvalidParameter
from crossroads.schema.responses import SEAL, parse_responses_request, seal_reasoning, unseal_reasoning

PDF = "data:application/pdf;base64,AA"


def parse(**body: Any) -> Any:
    return parse_responses_request({"model": "m/x", **body}, "default/model")


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    request = parse(input="Hi", instructions="Be brief.", max_output_tokens=64, temperature=0.5)
    assert request.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert request.max_output == 64 and request.params == {"temperature": 0.5}
    assert request.echo["instructions"] == "Be brief." and request.echo["store"] is False


def test_items_become_chat_messages() -> None:
    sealed = seal_reasoning([{"type": "reasoning.text", "text": "hmm", "signature": "sig"}])
    request = parse(input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Look"},
                                     {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                                     {"type": "input_file", "filename": "a.pdf", "file_data": PDF}]},
        {"type": "reasoning", "summary": [], "encrypted_content": sealed},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"a\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Done", "annotations": []}]},
    ])
    assert request.messages == [
        {"role": "developer", "content": [{"type": "text", "text": "Rules"}]},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                                     {"type": "file", "file": {"file_data": PDF, "filename": "a.pdf"}}]},
        {"role": "assistant", "content": None,
         "reasoning_details": [{"type": "reasoning.text", "text": "hmm", "signature": "sig"}],
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Done"}]},
    ]
    assert request.images == 1 and request.has_files


def test_reasoning_from_elsewhere_is_kept_as_it_came() -> None:
    request = parse(input=[
        {"role": "user", "content": "Hi"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thought"}], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "content": "Hello"},
    ])
    assert request.messages[1]["reasoning_details"] == [{"type": "reasoning.summary", "summary": "Thought"},
                                                        {"type": "reasoning.encrypted", "data": "gAAA"}]


def test_sealed_reasoning_round_trips_and_a_forged_one_is_refused() -> None:
    details = [{"type": "reasoning.encrypted", "data": "x", "format": "f", "index": 0}]
    assert unseal_reasoning(seal_reasoning(details), "p") == details
    with pytest.raises(InvalidParameter, match=r"input\[0\]\.encrypted_content"):
        parse(input=[{"type": "reasoning", "summary": [], "encrypted_content": SEAL + "!!"}])


def test_tools_choice_format_reasoning_and_verbosity() -> None:
    request = parse(
        input="x", tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        tool_choice={"type": "function", "name": "f"}, parallel_tool_calls=False,
        reasoning={"effort": "high", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
              "verbosity": "low"},
        include=["reasoning.encrypted_content"], store=False, prompt_cache_key="k", truncation="auto",
        client_metadata={"a": "b"})
    assert request.tools == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"},
                                                                "strict": True}}]
    assert request.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert request.response_format == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": {"type": "object"}, "strict": True}}
    assert request.reasoning.effort == "high"
    assert request.params["verbosity"] == "low" and request.params["parallel_tool_calls"] is False
    assert request.params["prompt_cache_key"] == "k"
    assert "client_metadata" not in request.extra and "include" not in request.extra


@pytest.mark.parametrize(("body", "path"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"store": True}, "store"),
    ({"background": True}, "background"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"tool_choice": {"type": "file_search"}}, "tool_choice.type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"input": 3}, "input"),
    ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
])
def test_refusals_name_the_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(**{"input": "x", **body})
    assert caught.value.param == path


def test_input_is_required() -> None:
    with pytest.raises(InvalidParameter, match="input: is required"):
        parse()
