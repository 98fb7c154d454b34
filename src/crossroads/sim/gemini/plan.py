"""What a Gemini reply says: thoughts, function calls, JSON, a quote of function responses or prose — grounded
in a Google Search when the `google_search` tool is given —, per candidate, cut by `maxOutputTokens` and the
stop sequences; and the prompt tokens the usage reports (see the package's docstring for the rules)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..search import results as search_results
from ..tools import tools_named
from .validate import Request

__all__ = ["Candidate", "count_prompt_tokens", "plan_candidates", "plan_thoughts"]

TOKENS_PER_MEDIA: Final = 258


def count_prompt_tokens(system: Sequence[str], contents: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(text tokens, media tokens) of a request: text parts and function call / response JSON, and 258 per
    inline or file part."""
    text = sum(reply.count_tokens(t) for t in system)
    media = 0
    for content in contents:
        for part in content["parts"]:
            if "text" in part:
                text += reply.count_tokens(part["text"])
            elif "functionCall" in part:
                call = part["functionCall"]
                text += reply.count_tokens(call["name"] + orjson.dumps(call.get("args") or {}).decode())
            elif "functionResponse" in part:
                response = part["functionResponse"]
                text += reply.count_tokens(response["name"] + orjson.dumps(response["response"]).decode())
            elif "inlineData" in part or "fileData" in part:
                media += TOKENS_PER_MEDIA
    return text, media


def _functions_to_call(parsed: Request) -> list[dict[str, Any]]:
    if not parsed.functions or parsed.mode == "NONE":
        return []
    last = parsed.contents[-1]
    if last["role"] != "user" or any("functionResponse" in part for part in last["parts"]):
        return []
    said = " ".join(part["text"] for part in last["parts"] if "text" in part).lower()
    candidates = parsed.functions
    if parsed.mode == "ANY" and parsed.allowed:
        candidates = [f for f in parsed.functions if f["name"] in parsed.allowed]
    return tools_named(candidates, said, forced=parsed.mode == "ANY")


def _function_results(contents: Sequence[Mapping[str, Any]]) -> list[str]:
    last = contents[-1]
    if last["role"] != "user":
        return []
    results = []
    for part in last["parts"]:
        if "functionResponse" in part:
            response = part["functionResponse"]["response"]
            value = next((response[key] for key in ("result", "output", "content") if key in response), response)
            results.append(value if isinstance(value, str) else orjson.dumps(value).decode())
    return results


@dataclass(slots=True)
class Candidate:
    """One planned candidate: thought and text pieces or function calls, how it finishes, its signature."""

    index: int
    thoughts: list[str]
    pieces: list[str]
    calls: list[dict[str, Any]]
    finish: str
    tokens: int
    signature: str | None
    logprobs: list[dict[str, Any]] | None
    grounding: dict[str, Any] | None = None


def _signature(seed: int) -> str:
    raw = b"".join(reply.mix(seed, k).to_bytes(8, "little") for k in range(12))
    return base64.b64encode(raw).decode()


def _plan_candidate(parsed: Request, behaviour: Behaviour, seed: int, index: int, thoughts: int,
                    calls: list[dict[str, Any]]) -> Candidate:
    choice_seed = reply.mix(seed, index + 1)
    budget = None if parsed.max_tokens is None else parsed.max_tokens - thoughts
    thought_text = list(reply.text_pieces(reply.mix(choice_seed, 0x7407), thoughts)) \
        if parsed.include_thoughts and thoughts else []
    signature = _signature(choice_seed) if thoughts else None
    length = budget is not None and budget <= 0
    if calls and not length:
        made = []
        for j, function in enumerate(calls):
            arguments = reply.tool_arguments(function["parameters"], reply.mix(choice_seed, j + 1))
            made.append({"name": function["name"], "args": orjson.loads(arguments)})
        tokens = sum(reply.count_tokens(orjson.dumps(c["args"]).decode()) for c in made)
        return Candidate(index, thought_text, [], made, "STOP", tokens, signature, None)

    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(choice_seed)
    results = _function_results(parsed.contents)
    if parsed.mime == "application/json":
        value = reply.json_instance(parsed.schema, choice_seed) if parsed.schema is not None \
            else {"reply": "".join(reply.text_pieces(choice_seed, count))}
        pieces = reply.split_pieces(orjson.dumps(value).decode())
    elif results:
        pieces = reply.quote_results(results)
    else:
        pieces = list(reply.text_pieces(choice_seed, count))
    if budget is not None and len(pieces) > budget:
        pieces, length = pieces[: max(budget, 0)], True
    pieces, stopped = reply.apply_stop(pieces, parsed.stops)
    finish = "MAX_TOKENS" if length and not stopped else "STOP"
    logprobs = reply.token_logprobs(pieces, reply.mix(choice_seed, 0x1095), parsed.top_logprobs) \
        if parsed.logprobs else None
    grounding = None
    if parsed.google_search and not results and parsed.mime != "application/json" and pieces:
        said = " ".join(part["text"] for part in parsed.contents[-1]["parts"] if "text" in part)
        grounding = _grounding(said[:200], "".join(pieces), choice_seed) if said else None
    return Candidate(index, thought_text, pieces, [], finish, reply.count_tokens("".join(pieces)), signature,
                     logprobs, grounding)


def _grounding(query: str, text: str, seed: int) -> dict[str, Any]:
    """`groundingMetadata` as Gemini reports a Google Search: the query, the sources (behind
    `grounding-api-redirect` URLs, titled with their domain) and two supported segments of the answer, in
    bytes of its UTF-8 text (a zero index left out, as proto3 JSON does): the first half cited by the first
    two sources, the rest by the third."""
    found = search_results(query, 3)
    chunks = [{"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
                              + reply.alnum_id(reply.mix(seed, 0x6E0, n), 48),
                       "title": r["url"].split("/")[2], "domain": r["url"].split("/")[2]}}
              for n, r in enumerate(found)]
    half = len(text) // 2
    first, rest = len(text[:half].encode()), len(text.encode())
    return {
        "webSearchQueries": [query],
        "searchEntryPoint": {"renderedContent": f"<div class=\"container\">{query}</div>"},
        "groundingChunks": chunks,
        "groundingSupports": [
            {"segment": {"endIndex": first, "text": text[:half]}, "groundingChunkIndices": [0, 1]},
            {"segment": {"startIndex": first, "endIndex": rest, "text": text[half:]}, "groundingChunkIndices": [2]},
        ] if half else [],
        "retrievalMetadata": {},
    }


def plan_thoughts(parsed: Request, behaviour: Behaviour, seed: int) -> int:
    """Thought tokens per candidate: the `reasoning` directive, else 12-31 when thinking is asked for (capped by
    `thinkingBudget`), and never more than `maxOutputTokens`."""
    thoughts = behaviour.reasoning
    if not thoughts and (parsed.include_thoughts or (parsed.thinking_budget or 0) > 0):
        thoughts = 12 + reply.mix(seed, 0x7401) % 20
        if parsed.thinking_budget is not None and parsed.thinking_budget > 0:
            thoughts = min(thoughts, parsed.thinking_budget)
    if parsed.max_tokens is not None:
        thoughts = min(thoughts, parsed.max_tokens)
    return thoughts


def plan_candidates(parsed: Request, behaviour: Behaviour, seed: int, thoughts: int) -> list[Candidate]:
    """The `candidateCount` candidates of a reply, each spending `thoughts` tokens first."""
    calls = _functions_to_call(parsed)
    return [_plan_candidate(parsed, behaviour, seed, i, thoughts, calls) for i in range(parsed.candidates)]
