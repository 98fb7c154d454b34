"""Wire format → adapter. A new wire format costs one adapter module and one line here."""

from __future__ import annotations

from collections.abc import Mapping

from crossroads.providers.anthropic_messages import AnthropicMessages
from crossroads.providers.base import Adapter
from crossroads.providers.gemini import Gemini
from crossroads.providers.openai_chat import OpenAIChat


def build_adapters() -> Mapping[str, Adapter]:
    adapters: list[Adapter] = [OpenAIChat(), AnthropicMessages(), Gemini()]
    return {adapter.wire_format: adapter for adapter in adapters}


def passthrough_headers(adapters: Mapping[str, Adapter]) -> tuple[str, ...]:
    """Every client header some adapter forwards; the API copies these into `ChatRequest.headers`."""
    return tuple(sorted(set().union(*(a.passthrough_headers for a in adapters.values()))))
