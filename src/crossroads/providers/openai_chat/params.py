"""What happens to each OpenAI/OpenRouter request parameter on the way to an OpenAI-compatible provider.

`PARAMS` says what the OpenAI format carries, as OpenAI names it; `QUIRKS` holds one row per provider
flavour (named by the catalog's `quirks` field) with what that provider takes, renames or lacks, and
`make_plan` applies an endpoint's flavour and features to the table once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from crossroads.catalog.types import Endpoint
from crossroads.providers.base import Convert, Keep, ParamTable, Plan, Rename, Row, Unsupported, plan

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


def web_search_options(value: Any, params: Mapping[str, Any], out: dict[str, Any]) -> None:
    """OpenAI's `web_search_options` takes `search_context_size` and `user_location` ("Web search" guide,
    Chat Completions); the `web` plugin's other options (domains, `max_uses`) have no place in it."""
    out["web_search_options"] = {k: v for k, v in value.items() if k in ("search_context_size", "user_location")}


#: Sent where the endpoint searches natively: OpenAI's search models (catalog feature `web_search`).
_NATIVE_SEARCH: Final = Convert(web_search_options, needs="web_search")


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
    #: The provider serves OpenAI's legacy `/completions` (a raw prompt, no chat template) for every model.
    legacy_completions: bool = False


QUIRKS: Final[Mapping[str, Quirks]] = {
    "generic": Quirks(params=_NO_SAMPLERS),
    "openai": Quirks(
        params={**_NO_SAMPLERS, "verbosity": Keep(), "prediction": Keep(), "web_search_options": _NATIVE_SEARCH,
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
        legacy_completions=True,
    ),
    "deepinfra": Quirks(params={"top_a": Unsupported()}, strict_messages=False, legacy_completions=True),
    "fireworks": Quirks(
        params={"top_a": Unsupported()},
        extras=frozenset({"mirostat_target", "mirostat_lr", "context_length_exceeded_behavior"}),
        strict_messages=False,
        legacy_completions=True,
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
    # https://docs.sambanova.ai/cloud/api-reference/endpoints/chat: top_k is taken; no penalties, logit_bias,
    # logprobs, seed or n.
    "sambanova": Quirks(
        params={**_NO_SAMPLERS, "top_k": Keep(), "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Unsupported(), "n": Unsupported(),
                "frequency_penalty": Unsupported(), "presence_penalty": Unsupported()},
    ),
    # https://docs.z.ai/api-reference/llm/chat-completion: thinking is `thinking: {"type": ...}`, not an effort;
    # no penalties, logit_bias, logprobs, seed or n; the end user is `user_id`.
    "zai": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Unsupported(), "n": Unsupported(),
                "frequency_penalty": Unsupported(), "presence_penalty": Unsupported(), "user": Unsupported()},
        extras=frozenset({"thinking", "do_sample", "request_id", "user_id", "tool_stream"}),
        reasoning="none",
    ),
    # Alibaba Cloud Model Studio's OpenAI-compatible mode (https://www.alibabacloud.com/help/en/model-studio/):
    # top_k is taken; thinking is `enable_thinking` / `thinking_budget`; no logit_bias.
    "alibaba": Quirks(
        params={**_NO_SAMPLERS, "top_k": Keep(), "logit_bias": Unsupported()},
        extras=frozenset({"enable_thinking", "thinking_budget", "enable_search", "search_options"}),
        reasoning="none",
    ),
    # https://platform.minimax.io/docs/api-reference/text-openai-api: penalties, logit_bias, logprobs, seed and n
    # are ignored or refused; thinking is always on (`reasoning_split` separates it from the answer).
    "minimax": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Unsupported(), "n": Unsupported(),
                "frequency_penalty": Unsupported(), "presence_penalty": Unsupported()},
        extras=frozenset({"reasoning_split"}),
        reasoning="none",
    ),
    # https://docs.ai21.com/reference/jamba-1-6-api-ref: no penalties, logit_bias, logprobs or seed;
    # `documents` grounds the answer.
    "ai21": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Unsupported(), "frequency_penalty": Unsupported(),
                "presence_penalty": Unsupported()},
        extras=frozenset({"documents"}),
        reasoning="none",
    ),
    # https://docs.inceptionlabs.ai/: a diffusion model; no penalties, logit_bias, logprobs, seed or n.
    "inception": Quirks(
        params={**_NO_SAMPLERS, "logit_bias": Unsupported(), "logprobs": Unsupported(),
                "top_logprobs": Unsupported(), "seed": Unsupported(), "n": Unsupported(),
                "frequency_penalty": Unsupported(), "presence_penalty": Unsupported()},
        extras=frozenset({"diffusing"}),
        reasoning="none",
    ),
    "ollama": Quirks(params={"top_a": Unsupported(), "logit_bias": Unsupported()}, accepts_unknown=True,
                     strict_messages=False, legacy_completions=True),
    "vllm": Quirks(params={"top_a": Unsupported()}, accepts_unknown=True, strict_messages=False,
                   legacy_completions=True),
    "llamacpp": Quirks(params={"top_a": Unsupported()}, accepts_unknown=True, strict_messages=False,
                       legacy_completions=True),
    "lmstudio": Quirks(params={"top_a": Unsupported(), "logit_bias": Unsupported()}, accepts_unknown=True,
                       strict_messages=False, legacy_completions=True),
    "simulator": Quirks(accepts_unknown=True, strict_messages=False, legacy_completions=True),
}

_REASONING_PARAMS: Final = frozenset({"reasoning", "reasoning_effort", "include_reasoning"})


@dataclass(frozen=True, slots=True)
class QuirksPlan(Plan):
    """A `Plan` with the provider flavour it was made for."""

    quirks: Quirks


def make_plan(endpoint: Endpoint) -> QuirksPlan:
    """The endpoint's provider flavour applied to `PARAMS`: the rows it takes, and what it supports."""
    quirks = QUIRKS.get(endpoint.provider.quirks, QUIRKS["generic"])
    drops = quirks.reasoning_drops if endpoint.features.reasoning else frozenset()
    if quirks.reasoning == "none":
        drops |= _REASONING_PARAMS
    made = plan({**PARAMS, **quirks.params}, endpoint.features, without=drops)
    return QuirksPlan(rows=made.rows, supported=made.supported, quirks=quirks)
