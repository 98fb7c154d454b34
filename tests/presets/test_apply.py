"""Applying a preset to a request body, and reading one from a body, for each inbound API."""

from __future__ import annotations

import pytest

from crossroads.errors import InvalidParameter
from crossroads.presets.apply import CHAT, COMPLETIONS, MESSAGES, RESPONSES, apply, from_request, named_preset
from crossroads.presets.book import Preset
from crossroads.storage.base import PresetRecord, PresetVersionRecord


def preset(config: dict[str, object], system_prompt: str | None = None) -> Preset:
    record = PresetRecord("p", "s", "s", None, "active", "v", 0.0, 0.0)
    return Preset(record, PresetVersionRecord("v", "p", 1, system_prompt, "{}", 0.0), config)


@pytest.mark.parametrize(("body", "slug", "rest"), [
    ({"model": "@preset/a"}, "a", {}),
    ({"model": "x/y@preset/a", "preset": "b"}, "a", {"model": "x/y"}),
    ({"model": "x/y", "preset": "b"}, "b", {"model": "x/y"}),
    ({"model": "x/y"}, None, {"model": "x/y"}),
])
def test_a_body_names_its_preset(body: dict[str, object], slug: str | None, rest: dict[str, object]) -> None:
    assert named_preset(body) == slug and body == rest


@pytest.mark.parametrize("body", [{"model": "@preset/"}, {"preset": 3}])
def test_a_bad_preset_name_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        named_preset(body)


def test_request_fields_win_and_tools_are_united() -> None:
    tool = {"type": "function", "function": {"name": "t", "parameters": {}}}
    mine = {"type": "function", "function": {"name": "t", "description": "mine", "parameters": {}}}
    other = {"type": "function", "function": {"name": "u", "parameters": {}}}
    got = apply({"temperature": 1, "top_p": None, "tools": [mine], "provider": {"only": ["a"]}},
                preset({"temperature": 0.1, "top_p": 0.5, "tools": [tool, other], "provider": {"sort": "price"},
                        "model": "m"}), CHAT)
    assert got == {"temperature": 1, "top_p": 0.5, "tools": [mine, other], "provider": {"only": ["a"]},
                   "model": "m"}


def test_the_system_prompt_goes_where_each_api_carries_it() -> None:
    question = [{"role": "user", "content": "q"}]
    p = preset({}, "Be brief.")
    assert apply({"messages": question}, p, CHAT)["messages"][0] == {"role": "system", "content": "Be brief."}
    own = [{"role": "developer", "content": "Mine."}, *question]
    assert apply({"messages": own}, p, CHAT)["messages"] == own
    assert apply({"messages": question}, p, MESSAGES)["system"] == "Be brief."
    assert apply({"system": "Mine."}, p, MESSAGES)["system"] == "Mine."
    assert apply({"input": "q"}, p, RESPONSES)["instructions"] == "Be brief."
    assert apply({"prompt": "q"}, p, COMPLETIONS) == {"prompt": "q"}


def test_a_preset_keeps_the_configuration_of_a_body() -> None:
    body = {"model": "m", "stream": True, "temperature": 0.2, "user": "u", "seed": None,
            "messages": [{"role": "system", "content": [{"type": "text", "text": "A."}]},
                         {"role": "system", "content": "B."}, {"role": "user", "content": "q"}]}
    assert from_request(body, CHAT) == ("A.\n\nB.", {"model": "m", "temperature": 0.2})
    assert from_request({"system": [{"type": "text", "text": "S."}], "max_tokens": 9}, MESSAGES) == (
        "S.", {"max_tokens": 9})
    assert from_request({"instructions": "I.", "input": "x"}, RESPONSES) == ("I.", {})
    with pytest.raises(InvalidParameter):
        from_request({"model": "@preset/other"}, CHAT)
