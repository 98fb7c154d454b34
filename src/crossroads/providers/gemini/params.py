"""What happens to each OpenAI/OpenRouter request parameter on the way to the Gemini API.

A dotted target nests: `generationConfig.topP` is `{"generationConfig": {"topP": ...}}` (Gemini API
reference, `GenerationConfig`: https://ai.google.dev/api/generate-content#generationconfig). The same table
answers `supported_parameters`: every row that is not `Unsupported` is a parameter Gemini honours.
"""

from __future__ import annotations

from typing import Final

from crossroads.providers.base import Convert, ParamTable, Rename, Unsupported
from crossroads.providers.gemini.convert import (
    as_list,
    google_search,
    int32_seed,
    response_format,
    tool_choice,
    tools,
)

PARAMS: Final[ParamTable] = {
    "temperature": Rename("generationConfig.temperature"),
    "top_p": Rename("generationConfig.topP"),
    "top_k": Rename("generationConfig.topK"),
    "frequency_penalty": Rename("generationConfig.frequencyPenalty"),
    "presence_penalty": Rename("generationConfig.presencePenalty"),
    "seed": Rename("generationConfig.seed", convert=int32_seed, needs="seed"),
    "stop": Rename("generationConfig.stopSequences", convert=as_list),
    "n": Rename("generationConfig.candidateCount"),
    # Both caps arrive merged as `ChatRequest.max_output`; the builder writes it.
    "max_tokens": Rename("generationConfig.maxOutputTokens"),
    "max_completion_tokens": Rename("generationConfig.maxOutputTokens"),
    "logprobs": Rename("generationConfig.responseLogprobs", needs="logprobs"),
    "top_logprobs": Rename("generationConfig.logprobs", needs="logprobs"),
    "response_format": Convert(response_format, needs="response_format"),
    "tools": Convert(tools, needs="tools"),
    "tool_choice": Convert(tool_choice, needs="tools"),
    # Built together by `convert.thinking_config`, which also needs the output cap and the model.
    "reasoning": Rename("generationConfig.thinkingConfig", needs="reasoning"),
    "reasoning_effort": Rename("generationConfig.thinkingConfig", needs="reasoning"),
    "include_reasoning": Rename("generationConfig.thinkingConfig", needs="reasoning"),
    # Gemini has no counterpart for these.
    "parallel_tool_calls": Unsupported(),
    "logit_bias": Unsupported(),
    "repetition_penalty": Unsupported(),
    "min_p": Unsupported(),
    "top_a": Unsupported(),
    "user": Unsupported(),
    "verbosity": Unsupported(),
    "prediction": Unsupported(),
    # Grounding with Google Search, where the catalog marks the endpoint `web_search`.
    "web_search_options": Convert(google_search, needs="web_search"),
    "modalities": Unsupported(),
    "audio": Unsupported(),
    "service_tier": Unsupported(),
    "prompt_cache_key": Unsupported(),
    "metadata": Unsupported(),
}
