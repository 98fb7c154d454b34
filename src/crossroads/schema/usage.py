"""Token usage, normalised once for every wire format.

`None` means "the provider did not report it"; `0` means "reported as zero". Adapters fill a `Usage` from
their provider's reply; the ledger prices it; `public()` renders OpenRouter's `usage` object.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    #: Prompt tokens read from the provider's cache (a subset of `prompt_tokens`).
    cached_tokens: int | None = None
    #: Prompt tokens written to the provider's cache (a subset of `prompt_tokens`).
    cache_write_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    #: Completion tokens spent on reasoning (a subset of `completion_tokens`).
    reasoning_tokens: int | None = None
    audio_prompt_tokens: int | None = None
    audio_completion_tokens: int | None = None
    image_completion_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None
    web_search_requests: int | None = None
    #: Input images, for per-image prices.
    images: int = 0
    #: True when the counts were estimated by Crossroads because the provider sent none (e.g. a stream the
    #: client cancelled before the provider's usage arrived).
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def public(self, cost: Decimal | None, prompt_cost: Decimal | None, completion_cost: Decimal | None,
               is_byok: bool = False) -> dict[str, Any]:
        """OpenRouter's `usage` object, `cost` in USD credits."""
        public = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": 0.0 if cost is None else float(cost),
            "is_byok": is_byok,
            "prompt_tokens_details": {
                "cached_tokens": self.cached_tokens or 0,
                "cache_write_tokens": (self.cache_write_tokens or 0) + (self.cache_write_1h_tokens or 0),
                "audio_tokens": self.audio_prompt_tokens or 0,
                "video_tokens": 0,
            },
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": 0.0 if prompt_cost is None else float(prompt_cost),
                "upstream_inference_completions_cost": 0.0 if completion_cost is None else float(completion_cost),
            },
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens or 0,
                "audio_tokens": self.audio_completion_tokens or 0,
                "image_tokens": self.image_completion_tokens or 0,
                "accepted_prediction_tokens": self.accepted_prediction_tokens or 0,
                "rejected_prediction_tokens": self.rejected_prediction_tokens or 0,
            },
        }
        if self.web_search_requests:
            public["server_tool_use_details"] = {"web_search_requests": self.web_search_requests}
        return public
