"""What a Chat Completions reply says: tool calls, JSON, a quote of tool results or prose, per choice, cut by
the output limit and the stop sequences; the reasoning shown with `reasoning_effort`; a search model's
answer citing its sources; and the prompt tokens the usage reports (see the package's docstring for the
rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..search import results as search_results
from ..tools import tools_named
from .validate import Params

__all__ = ["Choice", "ToolCall", "count_prompt_tokens", "plan_choices"]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_IMAGE = 85


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part.get("text") if part.get("type") == "text" else part.get("refusal")
            for part in content
            if isinstance(part, dict)
        ]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens: tokenizer count of each message's text, plus 3 per message and 85 per image."""
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += reply.count_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "image_url":
                    total += TOKENS_PER_IMAGE
                elif kind in ("text", "refusal"):
                    text = part.get(kind)
                    if isinstance(text, str):
                        total += reply.count_tokens(text)
    return total


def _tools_to_call(params: Params) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = [
        tool["function"] for tool in params.tools if tool.get("type", "function") == "function"
    ]
    choice = params.tool_choice
    if not functions or choice == "none" or params.messages[-1].get("role") == "tool":
        return []
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            return []
        name = choice["function"]["name"]
        return [function for function in functions if function["name"] == name][:1]
    last_user = next((m for m in reversed(params.messages) if m.get("role") == "user"), None)
    said = _text_of(last_user.get("content")).lower() if last_user else ""
    return tools_named(functions, said, forced=choice == "required", parallel=params.parallel_tool_calls)


def _tool_results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(_text_of(message.get("content")))
    return results[::-1]


@dataclass(slots=True)
class ToolCall:
    """A planned tool call: its id, function name and arguments, and the arguments' stream pieces."""

    id: str
    name: str
    arguments: str
    pieces: list[str]


@dataclass(slots=True)
class Choice:
    """One planned choice: text pieces or tool calls, how it finishes, its logprobs and output tokens."""

    index: int
    pieces: list[str]
    tool_calls: list[ToolCall]
    finish_reason: str
    logprobs: list[dict[str, Any]] | None
    tokens: int
    reasoning: list[str] = field(default_factory=list)  # the reasoning text shown, as pieces
    #: A search model's `url_citation` annotations of the text.
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.pieces)


def _plan_choice(
    *,
    index: int,
    seed: int,
    params: Params,
    behaviour: Behaviour,
    budget: int | None,
    calls: list[dict[str, Any]],
) -> Choice:
    choice_seed = reply.mix(seed, index + 1)
    length = False
    if calls:
        tool_calls: list[ToolCall] = []
        left = budget
        for j, function in enumerate(calls):
            call_seed = reply.mix(choice_seed, j + 1)
            arguments = reply.tool_arguments(function.get("parameters"), call_seed)
            pieces = reply.split_pieces(arguments)
            if left is not None:
                if left <= 0:
                    length = True
                    break
                if len(pieces) > left:
                    pieces, length = pieces[:left], True
                    arguments = "".join(pieces)
                left -= len(pieces)
            call_id = "call_" + reply.alnum_id(reply.mix(call_seed, 0xCA11), 24)
            tool_calls.append(ToolCall(call_id, function["name"], arguments, pieces))
        tokens = sum(reply.count_tokens(call.arguments) for call in tool_calls)
        return Choice(index, [], tool_calls, "length" if length else "tool_calls", None, tokens)

    response_format = params.response_format or {}
    kind = response_format.get("type")
    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(choice_seed)
    results = _tool_results(params.messages)
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema") or {}
        pieces = reply.split_pieces(orjson.dumps(reply.json_instance(schema, choice_seed)).decode())
    elif kind == "json_object":
        text = "".join(reply.text_pieces(choice_seed, count))
        pieces = reply.split_pieces(orjson.dumps({"reply": text}).decode())
    elif results:
        pieces = reply.quote_results(results)
    else:
        pieces = list(reply.text_pieces(choice_seed, count))
    if behaviour.broken_json and kind in ("json_schema", "json_object"):
        pieces = reply.split_pieces(reply.break_json("".join(pieces), behaviour.broken_json))
    if budget is not None and len(pieces) > budget:
        pieces, length = pieces[:budget], True
    pieces, stopped = reply.apply_stop(pieces, params.stops)
    finish = "stop" if stopped or not length else "length"
    logprobs = (
        reply.token_logprobs(pieces, reply.mix(choice_seed, 0x1095), params.top_logprobs) if params.logprobs else None
    )
    annotations: list[dict[str, Any]] = []
    if params.web_search and not kind and not results:
        pieces, annotations = _cite(pieces, _text_of(params.messages[-1].get("content"))[:200])
    return Choice(index, pieces, [], finish, logprobs, reply.count_tokens("".join(pieces)), annotations=annotations)


def _cite(pieces: list[str], query: str) -> tuple[list[str], list[dict[str, Any]]]:
    """A search model's answer: the text followed by markdown links to two sources (`?utm_source=openai`, as
    OpenAI tags them), each link the span of one `url_citation` annotation."""
    text = "".join(pieces)
    annotations = []
    for found in search_results(query or "news", 2):
        url = found["url"] + "?utm_source=openai"
        link = f"([{url.split('/')[2]}]({url}))"
        start = len(text) + 1
        pieces = [*pieces, " " + link]
        text += " " + link
        annotations.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": start + len(link), "title": found["title"], "url": url}})
    return pieces, annotations


def plan_choices(params: Params, behaviour: Behaviour, seed: int) -> tuple[list[Choice], int]:
    """The `n` choices of a reply and the reasoning tokens each spends first (capped by the output limit);
    with `reasoning_effort`, each choice also carries the reasoning text it shows."""
    cap = params.max_tokens
    shown = params.reasoning_effort not in (None, "none")
    wanted = behaviour.reasoning or (reply.default_token_count(reply.mix(seed, 0x7EA5)) if shown else 0)
    reasoning = wanted if cap is None else min(wanted, cap)
    budget = None if cap is None else cap - reasoning
    calls = _tools_to_call(params)
    choices = [
        _plan_choice(index=i, seed=seed, params=params, behaviour=behaviour, budget=budget, calls=calls)
        for i in range(params.n)
    ]
    for choice in choices:
        if wanted > reasoning:
            choice.finish_reason = "length"
        if shown:
            choice.reasoning = list(reply.text_pieces(reply.mix(seed, choice.index + 1, 0x7EA5), reasoning))
    return choices, reasoning
