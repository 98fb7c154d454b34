"""An OpenAI-format reply: nearly what the client gets. Finish reasons are normalised (the provider's own
kept in `native_finish_reason`), `reasoning_content` becomes `reasoning`, and usage becomes a `Usage`.

A search model (catalog feature `web_search`) searches the web before every answer ("Web search" guide,
Chat Completions) and cites its sources as the message's `url_citation` `annotations`, which are already
OpenRouter's form; the usage reports no searches, so each reply counts one (`usage_from`)."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import Completion, malformed, normalise_finish
from crossroads.providers.openai_chat.errors import error_from_payload
from crossroads.schema.usage import Usage

#: `object` of a reply of OpenAI's legacy Completions API (`providers/openai_chat/completions.py`).
LEGACY_OBJECT = "text_completion"


def parse_response(body: bytes, endpoint: Endpoint) -> Completion:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(502, "Provider returned a malformed reply", provider=endpoint.provider.name,
                            raw=body[:500].decode("utf-8", "replace"),
                            error_type="provider_unavailable") from exc
    if not isinstance(data, dict):
        raise malformed(endpoint, body)
    if "error" in data and not data.get("choices"):
        raise error_from_payload(data["error"], 502, endpoint)
    if data.get("object") == LEGACY_OBJECT:
        _as_chat_choices(data)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise malformed(endpoint, body)
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise malformed(endpoint, body)
        native = choice.get("finish_reason")
        choice["finish_reason"] = normalise_finish(native)
        choice["native_finish_reason"] = native
        choice.setdefault("logprobs", None)
        _normalise_message(choice["message"])
    extra = {k: data[k] for k in ("system_fingerprint", "service_tier") if data.get(k) is not None}
    return Completion(choices=choices, usage=usage_from(data.get("usage"), endpoint), extra=extra,
                      upstream_id=data.get("id"))


def usage_from(raw: Any, endpoint: Endpoint | None = None) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = raw.get("prompt_cache_hit_tokens")  # DeepSeek reports cache hits at the top level
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=prompt_details.get("cache_write_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens"),
        audio_prompt_tokens=prompt_details.get("audio_tokens"),
        audio_completion_tokens=completion_details.get("audio_tokens"),
        accepted_prediction_tokens=completion_details.get("accepted_prediction_tokens"),
        rejected_prediction_tokens=completion_details.get("rejected_prediction_tokens"),
        web_search_requests=1 if endpoint is not None and endpoint.features.web_search else None,
    )


def _normalise_message(message: dict[str, Any]) -> None:
    if "reasoning_content" in message:
        message["reasoning"] = message.pop("reasoning_content")
    message.setdefault("role", "assistant")
    message.setdefault("content", None)
    message.setdefault("refusal", None)
    message.setdefault("reasoning", None)
    calls = message.get("tool_calls")
    if calls is not None and not calls:
        del message["tool_calls"]
    elif calls:
        for call in calls:
            function = call.get("function") or {}
            if function.get("arguments") == "":
                function["arguments"] = "{}"  # no-argument tools: clients parse this as JSON


def _as_chat_choices(data: dict[str, Any]) -> None:
    """A legacy reply's choices in chat's shape, in place: `text` becomes the message's content."""
    for choice in data.get("choices") or ():
        if isinstance(choice, dict) and "message" not in choice:
            text = choice.pop("text", None)
            choice["message"] = {"role": "assistant", "content": text if isinstance(text, str) else ""}
