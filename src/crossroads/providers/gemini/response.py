"""Gemini `GenerateContentResponse` → OpenAI-shaped choices and usage.

Gemini API reference, `GenerateContentResponse` (https://ai.google.dev/api/generate-content#
generatecontentresponse): `candidates[]` (each with `content.parts`, `finishReason`, `index`,
`logprobsResult`), `promptFeedback` and `usageMetadata`, plus `responseId` and `modelVersion`.

  * Parts: text → `content`; thought parts (`thought: true`) → `reasoning` and a `reasoning.text` entry
    of `reasoning_details` (one entry per run of thought parts; a stream sends it in pieces sharing an
    `index`, which clients concatenate); `functionCall` → `tool_calls` (arguments serialised back to a JSON string);
    `inlineData` images → `images`. A `thoughtSignature` on any part becomes a `reasoning.encrypted` entry
    whose `id` is the tool call it came with (if any), so a client that sends `reasoning_details` back
    returns it to the right part (`messages.py`).
  * Tool call ids: Gemini's own `functionCall.id` when it sends one; otherwise `call_` + a hash of the
    response id, the candidate and the call's position — stable between a stream and its replay.
  * Usage: prompt = `promptTokenCount` (+ `toolUsePromptTokenCount`); completion = `candidatesTokenCount`
    + `thoughtsTokenCount`, since thoughts are billed as output; `cachedContentTokenCount` → cached tokens;
    `thoughtsTokenCount` → reasoning tokens.
  * Grounding with Google Search: `groundingMetadata` → `annotations` (`grounding.py`); its
    `webSearchQueries` are the usage's web searches.
  * Finish reasons: the table below, with STOP after a function call reported as `tool_calls`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.providers.base import Completion, malformed
from crossroads.providers.gemini.errors import blocked_prompt, error_from_payload
from crossroads.providers.gemini.grounding import annotations_of, searches
from crossroads.providers.gemini.messages import REASONING_FORMAT
from crossroads.schema.usage import Usage

__all__ = ["FINISH_REASONS", "call_id", "finish", "parse_response", "usage_from"]

#: Gemini `FinishReason` → OpenRouter's normalised finish reasons. Failures to produce a usable answer
#: (a malformed or unexpected function call, a missing thought signature) are `error`; the raw value is
#: always kept in `native_finish_reason`.
FINISH_REASONS: Final[Mapping[str, str]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}


def finish(native: str, called: bool) -> str:
    normalised = FINISH_REASONS.get(native, "stop")
    return "tool_calls" if called and normalised == "stop" else normalised


def call_id(response_id: str, candidate: int, ordinal: int) -> str:
    digest = hashlib.blake2b(f"{response_id}/{candidate}/{ordinal}".encode(), digest_size=12).hexdigest()
    return "call_" + digest


def fresh_id() -> str:
    """A stand-in response id when Gemini sent none, so call ids stay unique."""
    return os.urandom(12).hex()


def parse_response(body: bytes, endpoint: Endpoint) -> Completion:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed(endpoint, body) from exc
    if not isinstance(data, dict):
        raise malformed(endpoint, body)
    if isinstance(data.get("error"), dict):
        raise error_from_payload(data["error"], None, endpoint)
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            raise blocked_prompt(feedback, endpoint)
        raise malformed(endpoint, body)
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise malformed(endpoint, body)
    response_id = data.get("responseId") if isinstance(data.get("responseId"), str) else None
    seed = response_id or fresh_id()
    choices = [_choice(candidate, position, seed) for position, candidate in enumerate(candidates)]
    usage = usage_from(data.get("usageMetadata"))
    searched = sum(searches(candidate.get("groundingMetadata")) for candidate in candidates)
    if usage is not None and searched:
        usage.web_search_requests = searched
    return Completion(choices=choices, usage=usage, upstream_id=response_id)


def _choice(candidate: Mapping[str, Any], position: int, seed: str) -> dict[str, Any]:
    index = candidate.get("index", position)
    content = candidate.get("content") or {}
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict):
            continue
        call = None
        if part.get("thought") and isinstance(part.get("text"), str):
            thoughts.append(part["text"])
            if details and details[-1]["type"] == "reasoning.text":  # one block per run of thought parts
                details[-1]["text"] += part["text"]
            else:
                details.append(reasoning_text(part["text"], len(details)))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = tool_call(part["functionCall"], seed, index, len(calls))
            calls.append(call)
        elif isinstance(part.get("inlineData"), dict):
            images.append(image(part["inlineData"]))
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            details.append(reasoning_signature(signature, call["id"] if call else None, len(details)))
    native = candidate.get("finishReason")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "reasoning": "".join(thoughts) if thoughts else None,
    }
    if details:
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    if images:
        message["images"] = images
    cited = annotations_of(candidate.get("groundingMetadata"), "".join(texts))
    if cited:
        message["annotations"] = cited
    return {
        "index": index,
        "message": message,
        "finish_reason": finish(native, bool(calls)) if isinstance(native, str) else None,
        "native_finish_reason": native,
        "logprobs": logprobs(candidate.get("logprobsResult")),
    }


def tool_call(function_call: Mapping[str, Any], seed: str, candidate: int, ordinal: int) -> dict[str, Any]:
    args = function_call.get("args")
    given = function_call.get("id")
    return {
        "id": given if isinstance(given, str) and given else call_id(seed, candidate, ordinal),
        "type": "function",
        "function": {"name": str(function_call.get("name") or ""),
                     "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode()},
    }


def reasoning_text(text: str, index: int) -> dict[str, Any]:
    return {"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index}


def reasoning_signature(signature: str, owner: str | None, index: int) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": signature, "id": owner, "format": REASONING_FORMAT,
            "index": index}


def image(blob: Mapping[str, Any]) -> dict[str, Any]:
    mime = blob.get("mimeType") or "image/png"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{blob.get('data') or ''}"}}


def logprobs(result: Any) -> dict[str, Any] | None:
    """`logprobsResult` (chosen and top candidates per step) → OpenAI's `logprobs.content`."""
    if not isinstance(result, dict) or not isinstance(result.get("chosenCandidates"), list):
        return None
    raw_tops = result.get("topCandidates")
    tops: list[Any] = raw_tops if isinstance(raw_tops, list) else []
    content = []
    for step, chosen in enumerate(result["chosenCandidates"]):
        alternatives = tops[step].get("candidates", []) if step < len(tops) and isinstance(tops[step], dict) else []
        content.append({**_token(chosen), "top_logprobs": [_token(c) for c in alternatives if isinstance(c, dict)]})
    return {"content": content, "refusal": None}


def _token(candidate: Mapping[str, Any]) -> dict[str, Any]:
    token = str(candidate.get("token", ""))
    return {"token": token, "logprob": float(candidate.get("logProbability", 0.0)), "bytes": list(token.encode())}


def usage_from(meta: Any) -> Usage | None:
    """`usageMetadata` → `Usage`. Zero counts are left out of Gemini's JSON (proto3), so a missing count
    beside reported ones is a zero."""
    if not isinstance(meta, dict) or not any(isinstance(v, int) for v in meta.values()):
        return None
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    thoughts = meta.get("thoughtsTokenCount")
    completion = _count(meta, "candidatesTokenCount") + (thoughts if isinstance(thoughts, int) else 0)
    cached = meta.get("cachedContentTokenCount")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached if isinstance(cached, int) else None,
        reasoning_tokens=thoughts if isinstance(thoughts, int) else None,
        audio_prompt_tokens=_modality(meta.get("promptTokensDetails"), "AUDIO"),
        image_completion_tokens=_modality(meta.get("candidatesTokensDetails"), "IMAGE"),
    )


def _count(meta: Mapping[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) else 0


def _modality(details: Any, modality: str) -> int | None:
    if not isinstance(details, list):
        return None
    for entry in details:
        if isinstance(entry, dict) and entry.get("modality") == modality and isinstance(entry.get("tokenCount"), int):
            return int(entry["tokenCount"])
    return None
