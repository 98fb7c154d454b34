"""Wire format → adapter. A new wire format costs one adapter module, one line here and one row in the
catalog's list of wire formats (`catalog/wire_formats.py`), which the adapters are checked against."""

from __future__ import annotations

from collections.abc import Mapping

from crossroads.catalog.wire_formats import WIRE_FORMATS
from crossroads.providers.anthropic_messages import AnthropicMessages
from crossroads.providers.azure_openai import AzureOpenAI
from crossroads.providers.base import Adapter
from crossroads.providers.bedrock import Bedrock
from crossroads.providers.gemini import Gemini
from crossroads.providers.openai_chat import OpenAIChat
from crossroads.providers.vertex import Vertex


def build_adapters() -> Mapping[str, Adapter]:
    adapters: list[Adapter] = [OpenAIChat(), AnthropicMessages(), Gemini(), Bedrock(), Vertex(), AzureOpenAI()]
    by_format = {adapter.wire_format: adapter for adapter in adapters}
    if sorted(by_format) != sorted(WIRE_FORMATS):
        raise RuntimeError(f"adapters for {sorted(by_format)}, but the catalog lists {sorted(WIRE_FORMATS)}")
    return by_format


def passthrough_headers(adapters: Mapping[str, Adapter]) -> tuple[str, ...]:
    """Every client header some adapter forwards; the API copies these into `ChatRequest.headers`."""
    return tuple(sorted(set().union(*(a.passthrough_headers for a in adapters.values()))))
