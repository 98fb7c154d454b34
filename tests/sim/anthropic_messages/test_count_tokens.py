"""Anthropic Messages simulator: `POST /v1/messages/count_tokens` counts what a reply to the same request bills."""

from __future__ import annotations

import anthropic
import pytest

from .support import MODEL, USER

TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}


async def test_count_matches_the_billed_input(claude: anthropic.AsyncAnthropic) -> None:
    system = "You are brief."
    counted = await claude.messages.count_tokens(model=MODEL, system=system, tools=[TOOL],  # type: ignore[list-item]
                                                 messages=USER, thinking={"type": "enabled", "budget_tokens": 2048})  # type: ignore[arg-type]
    reply = await claude.messages.create(model=MODEL, max_tokens=10, system=system, tools=[TOOL],  # type: ignore[list-item]
                                         messages=USER)  # type: ignore[arg-type]
    assert counted.input_tokens == reply.usage.input_tokens > 0


async def test_count_checks_the_request(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.count_tokens(model=MODEL, messages=[{"role": "robot", "content": "hi"}])  # type: ignore[list-item,typeddict-item]
