"""What a streamed generation said, gathered from its translated chunks when the gateway keeps generations'
content (`CROSSROADS_OTLP_CONTENT=on`, for traces): per choice, the text, the reasoning text and the tool
calls, as the messages a whole reply would have held. Nothing gathers anything while content is off."""

from __future__ import annotations

from typing import Any

from crossroads.providers.base import Piece


class Transcript:
    __slots__ = ("_choices",)

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}

    def feed(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            for choice in piece.get("choices") or ():
                delta = choice.get("delta")
                if delta:
                    index = choice.get("index", 0)
                    known = self._choices.get(index)
                    if known is None:
                        known = self._choices[index] = _Choice()
                    known.feed(delta)

    def messages(self) -> list[dict[str, Any]]:
        """The assistant message of each choice, in choice order."""
        return [self._choices[i].message() for i in sorted(self._choices)]


class _Choice:
    __slots__ = ("calls", "reasoning", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}

    def feed(self, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.text.append(content)
        reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self.reasoning.append(reasoning)
        for call in delta.get("tool_calls") or ():
            known = self.calls.setdefault(call.get("index", len(self.calls)),
                                          {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                known["id"] = call["id"]
            function = call.get("function") or {}
            known["function"]["name"] += function.get("name") or ""
            known["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.reasoning:
            message["reasoning"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return message


__all__ = ["Transcript"]
