"""Tool use, the same in every wire format: which answers pair with which calls, and which tools a reply calls.

Each format finds the calls and answers in its own message shape and words the errors its provider sends;
the rules themselves live here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["pair_answers", "tools_named"]

_Tool = TypeVar("_Tool", bound=Mapping[str, Any])


def pair_answers(calls: Sequence[str], answers: Sequence[str]) -> tuple[int | None, list[str]]:
    """Match a turn's answers (call ids or names) against the previous turn's calls.

    Returns the position of the first answer that names no call (None when all do) and the calls no answer
    names, in call order.
    """
    unknown = next((position for position, answer in enumerate(answers) if answer not in calls), None)
    return unknown, [call for call in calls if call not in answers]


def tools_named(
    tools: Sequence[_Tool], said: str, *, forced: bool, parallel: bool = True
) -> list[_Tool]:
    """The tools whose `name` the user's (lower-cased) text `said` mentions; when none is and a tool call is
    `forced`, the first tool; only the first of them without `parallel` calls."""
    named = [tool for tool in tools if tool["name"].lower() in said]
    chosen = named or (list(tools[:1]) if forced else [])
    return chosen if parallel else chosen[:1]
