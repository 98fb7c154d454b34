"""The OpenAI Chat Completions wire format: OpenAI itself and every OpenAI-compatible provider.

`PARAMS` says what happens to each request parameter; `QUIRKS` holds one row per provider flavour (named by
the catalog's `quirks` field) with what that provider takes, renames or lacks. Everything else about the
format is shared: the request is the client's body minus gateway fields, the reply is nearly what the client
gets, and a stream needs little more than a few fields rewritten per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from crossroads.catalog.types import Endpoint
from crossroads.errors import UpstreamError
from crossroads.providers.base import (
    Completion,
    Keep,
    ParamTable,
    Piece,
    Plan,
    Plans,
    Rename,
    Row,
    StreamTranslator,
    Unsupported,
    UpstreamRequest,
    apply_params,
    malformed,
    normalise_finish,
    plan,
    retry_after,
)
from crossroads.schema.request import ChatRequest, Reasoning
from crossroads.schema.usage import Usage

WIRE_FORMAT: Final = "openai_chat"

#: Every parameter the OpenAI format can carry, as OpenAI names it. Quirk rows override entries.
PARAMS: Final[ParamTable] = {
    "temperature": Keep(),
    "top_p": Keep(),
    "top_k": Keep(),
    "frequency_penalty": Keep(),
    "presence_penalty": Keep(),
    "repetition_penalty": Keep(),
    "min_p": Keep(),
    "top_a": Keep(),
    "seed": Keep(needs="seed"),
    "max_tokens": Keep(),
    "max_completion_tokens": Keep(),
    "logit_bias": Keep(),
    "logprobs": Keep(needs="logprobs"),
    "top_logprobs": Keep(needs="logprobs"),
    "stop": Keep(),
    "n": Keep(),
    "response_format": Keep(needs="response_format"),
    "tools": Keep(needs="tools"),
    "tool_choice": Keep(needs="tools"),
    "parallel_tool_calls": Keep(needs="tools"),
    "reasoning": Keep(needs="reasoning"),
    "reasoning_effort": Keep(needs="reasoning"),
    "include_reasoning": Keep(needs="reasoning"),
    "verbosity": Unsupported(),
    "user": Keep(),
    "prediction": Unsupported(),
    "web_search_options": Unsupported(),
    "modalities": Unsupported(),
    "audio": Unsupported(),
    "service_tier": Unsupported(),
    "prompt_cache_key": Unsupported(),
    "metadata": Unsupported(),
}

_NO_SAMPLERS: Final = {k: Unsupported() for k in ("top_k", "repetition_penalty", "min_p", "top_a")}


@dataclass(frozen=True, slots=True)
class Quirks:
    """One provider flavour of the OpenAI format."""

    #: Overrides of `PARAMS` rows.
    params: Mapping[str, Row] = field(default_factory=dict)
    #: The field that carries the output cap upstream.
    max_tokens_field: str = "max_tokens"
    #: Whether `stream_options.include_usage` is understood (else usage may be missing from streams).
    stream_usage: bool = True
    #: Provider-specific top-level fields forwarded when a client sends them (e.g. Mistral's `safe_prompt`).
    extras: frozenset[str] = frozenset()
    #: Forward every field the gateway does not know (local servers take sampler extras freely).
    accepts_unknown: bool = False
    #: Strip message and content-part fields OpenAI's schema does not have (reasoning, cache_control...).
    strict_messages: bool = True
    #: Where reasoning settings go: "effort" → `reasoning_effort`; "none" → dropped.
    reasoning: str = "effort"
    #: Sampling parameters the provider refuses on reasoning models.
    reasoning_drops: frozenset[str] = frozenset()


QUIRKS: Final[Mapping[str, Quirks]] = {
    "generic": Quirks(params=_NO_SAMPLERS),
    "openai": Quirks(
        params={**_NO_SAMPLERS, "verbosity": Keep(), "prediction": Keep(), "web_search_options": Keep(),
                "modalities": Keep(), "audio": Keep(), "service_tier": Keep(), "prompt_cache_key": Keep(),
                "metadata": Keep()},
        max_tokens_field="max_completion_tokens",
        reasoning_drops=frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty",
                                   "logprobs", "top_logprobs", "logit_bias"}),
    ),
    "groq": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "n": Unsupported(), "service_tier": Keep()},
        extras=frozenset({"reasoning_format", "search_settings"}),
    ),
    "together": Quirks(
        params={"top_a": Unsupported()},
        extras=frozenset({"safety_model", "context_length_exceeded_behavior"}),
        strict_messages=False,
    ),
    "deepinfra": Quirks(params={"top_a": Unsupported()}, strict_messages=False),
    "fireworks": Quirks(
        params={"top_a": Unsupported()},
        extras=frozenset({"mirostat_target", "mirostat_lr", "context_length_exceeded_behavior"}),
        strict_messages=False,
    ),
    "mistral": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Rename("random_seed", needs="seed"),
                "user": Unsupported()},
        extras=frozenset({"safe_prompt", "random_seed", "prompt_mode"}),
        reasoning="none",
    ),
    "deepseek": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "seed": Unsupported(), "n": Unsupported()},
        reasoning="none",
        reasoning_drops=frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty",
                                   "logprobs", "top_logprobs"}),
    ),
    "xai": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported()},
        extras=frozenset({"search_parameters"}),
        reasoning_drops=frozenset({"presence_penalty", "frequency_penalty", "stop"}),
    ),
    "cerebras": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "frequency_penalty": Unsupported(),
                "presence_penalty": Unsupported(), "n": Unsupported()},
        max_tokens_field="max_completion_tokens",
    ),
    "perplexity": Quirks(
        params={**_NO_SAMPLERS, "top_k": Keep(), "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "n": Unsupported(), "seed": Unsupported(),
                "tools": Unsupported(), "tool_choice": Unsupported(), "parallel_tool_calls": Unsupported(),
                "web_search_options": Keep()},
        extras=frozenset({"search_domain_filter", "search_recency_filter", "return_images",
                          "return_related_questions", "search_mode"}),
        reasoning="none",
    ),
    "cohere": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "n": Unsupported(), "top_logprobs": Unsupported(),
                "parallel_tool_calls": Unsupported()},
        stream_usage=False,  # Cohere's compatibility API rejects stream_options
        reasoning="none",
    ),
    "ollama": Quirks(params={"top_a": Unsupported(), "logit_bias": Unsupported()}, accepts_unknown=True,
                     strict_messages=False),
    "vllm": Quirks(params={"top_a": Unsupported()}, accepts_unknown=True, strict_messages=False),
    "llamacpp": Quirks(params={"top_a": Unsupported()}, accepts_unknown=True, strict_messages=False),
    "lmstudio": Quirks(params={"top_a": Unsupported(), "logit_bias": Unsupported()}, accepts_unknown=True,
                       strict_messages=False),
    "simulator": Quirks(accepts_unknown=True, strict_messages=False),
}

#: Message fields in OpenAI's schema; strict providers get only these.
_MESSAGE_KEYS: Final = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio"})
_PART_DROP: Final = frozenset({"cache_control", "prompt_cache_breakpoint"})
_EFFORT_FALLBACK: Final = {"max": "high", "xhigh": "high", "none": "minimal"}
_REASONING_PARAMS: Final = frozenset({"reasoning", "reasoning_effort", "include_reasoning"})


@dataclass(frozen=True, slots=True)
class _Plan(Plan):
    """A `Plan` with the provider flavour it was made for."""

    quirks: Quirks


def _make_plan(endpoint: Endpoint) -> _Plan:
    quirks = QUIRKS.get(endpoint.provider.quirks, QUIRKS["generic"])
    drops = quirks.reasoning_drops if endpoint.features.reasoning else frozenset()
    if quirks.reasoning == "none":
        drops |= _REASONING_PARAMS
    made = plan({**PARAMS, **quirks.params}, endpoint.features, without=drops)
    return _Plan(rows=made.rows, supported=made.supported, quirks=quirks)


class OpenAIChat:
    wire_format = WIRE_FORMAT
    passthrough_headers: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._plans = Plans(_make_plan)

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]:
        return self._plans(endpoint).supported

    # -- request -------------------------------------------------------------------------------------------

    def build_request(self, request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest:
        plan = self._plans(endpoint)
        quirks = plan.quirks
        out: dict[str, Any] = {"model": endpoint.upstream_model}
        messages = request.messages
        out["messages"] = _clean_messages(messages) if quirks.strict_messages else messages
        apply_params(plan.rows, request.params, out)
        if quirks.accepts_unknown or quirks.extras:
            # Fields OpenAI's format does not define, for the providers that take them.
            for fields in (request.params, request.extra):
                for key, value in fields.items():
                    if key not in PARAMS and (quirks.accepts_unknown or key in quirks.extras):
                        out[key] = value
        if request.max_output is not None:
            out[quirks.max_tokens_field] = request.max_output
        if "reasoning" in plan.supported:
            effort = _effort(request.reasoning)
            if effort is not None:
                out["reasoning_effort"] = effort
        if request.stream:
            out["stream"] = True
            if quirks.stream_usage:
                out["stream_options"] = {"include_usage": True}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if endpoint.provider.api_key:
            headers["Authorization"] = f"Bearer {endpoint.provider.api_key}"
        for name, value in endpoint.provider.headers:
            headers[name] = value
        return UpstreamRequest(url=endpoint.provider.base_url + "/chat/completions", headers=headers,
                               body=orjson.dumps(out))

    # -- replies -------------------------------------------------------------------------------------------

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "Provider returned a malformed reply", provider=endpoint.provider.name,
                                raw=body[:500].decode("utf-8", "replace"),
                                error_type="provider_unavailable") from exc
        if not isinstance(data, dict):
            raise malformed(endpoint, body)
        if "error" in data and not data.get("choices"):
            raise _error_from_payload(data["error"], 502, endpoint)
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
        return Completion(choices=choices, usage=usage_from(data.get("usage")), extra=extra,
                          upstream_id=data.get("id"))

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        payload = data.get("error") if isinstance(data, dict) else None
        if isinstance(payload, dict | str):
            error = _error_from_payload(payload, status, endpoint)
            error.retry_after = retry_after(headers)
            if error.retry_after is not None:
                error.headers["Retry-After"] = str(max(0, int(-(-error.retry_after // 1))))
            return error
        return UpstreamError(status, "Provider returned error", provider=endpoint.provider.name,
                             raw=body[:1000].decode("utf-8", "replace") or None,
                             retry_after=retry_after(headers))

    def stream_translator(self, request: ChatRequest, endpoint: Endpoint) -> OpenAIStream:
        return OpenAIStream(endpoint)


class OpenAIStream(StreamTranslator):
    """Translates an OpenAI-format SSE stream: normalises finish reasons, moves `reasoning_content` to
    `reasoning`, and holds back the usage chunk (the gateway sends its own, with cost, at the end).

    Every chunk is decoded: orjson decodes a typical chunk in well under a microsecond, faster than even
    searching its bytes for the few fields that would need translating."""

    __slots__ = ()

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        if data == b"[DONE]":
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "Provider sent a malformed stream event",
                                provider=self.endpoint.provider.name, raw=data[:500].decode("utf-8", "replace"),
                                error_type="provider_unavailable") from exc
        if not isinstance(chunk, dict):
            raise malformed(self.endpoint, data)
        if "error" in chunk and not chunk.get("choices"):
            raise _error_from_payload(chunk["error"], 502, self.endpoint)
        if self.upstream_id is None:
            self.upstream_id = chunk.get("id") or ""
            fingerprint = chunk.get("system_fingerprint")
            if fingerprint:
                self.head_fields["system_fingerprint"] = fingerprint
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_from(usage)
        choices = chunk.get("choices")
        if not choices:
            return []
        for choice in choices:
            delta = choice.get("delta")
            if delta is None:
                choice["delta"] = delta = {}
            content = delta.get("content")
            if content:
                self.completion_chars += len(content)
            if "reasoning_content" in delta:
                delta["reasoning"] = delta.pop("reasoning_content")
            native = choice.get("finish_reason")
            if native is not None:
                self.native_finish_reason = native
                self.finish_reason = choice["finish_reason"] = normalise_finish(native)
            choice["native_finish_reason"] = native
        return [{"choices": choices}]


def usage_from(raw: Any) -> Usage | None:
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
    )


def _effort(reasoning: Reasoning) -> str | None:
    """`reasoning_effort` for the request's reasoning: "medium" unless an effort is given, "minimal" (the least
    OpenAI's efforts go) when reasoning is turned off, nothing when the request says nothing."""
    if reasoning.enabled is None:
        return None
    if reasoning.enabled is False:
        return "minimal"
    effort = reasoning.effort or "medium"
    return _EFFORT_FALLBACK.get(effort, effort)


def _clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with only OpenAI's fields; the list is copied only when something must go."""
    if all(message.keys() <= _MESSAGE_KEYS and not _has_part_extras(message) for message in messages):
        return messages
    out = []
    for message in messages:
        clean = {k: v for k, v in message.items() if k in _MESSAGE_KEYS}
        content = clean.get("content")
        if isinstance(content, list):
            clean["content"] = [
                {k: v for k, v in part.items() if k not in _PART_DROP} if isinstance(part, dict) else part
                for part in content
            ]
        out.append(clean)
    return out


def _has_part_extras(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and not part.keys().isdisjoint(_PART_DROP) for part in content
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


def _error_from_payload(payload: Any, status: int, endpoint: Endpoint) -> UpstreamError:
    if isinstance(payload, str):
        return UpstreamError(status, payload, provider=endpoint.provider.name, raw=payload)
    message = payload.get("message") if isinstance(payload, dict) else None
    code = payload.get("code") if isinstance(payload, dict) else None
    if isinstance(code, int) and 400 <= code < 600 and status == 502:
        status = code
    return UpstreamError(
        status,
        str(message or "Provider returned error"),
        provider=endpoint.provider.name,
        raw=payload,
        provider_code=str(code) if code is not None else (payload.get("type") if isinstance(payload, dict)
                                                           else None),
    )

