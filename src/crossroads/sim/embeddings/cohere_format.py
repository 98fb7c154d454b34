"""Cohere's v2 embeddings (`POST /v2/embed`): `{model, texts (1 to 96), input_type (required),
embedding_types, output_dimension?}` → `{id, response_type: "embeddings_by_type", embeddings: {float:
[[...]]}, texts, meta: {billed_units: {input_tokens}}}`. Errors are OpenAI-shaped here (Cohere's carry a
`message` as well)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..behaviour import Behaviour
from ..checks import is_integer
from ..openai_chat.errors import invalid
from ..openai_style import OpenAIStyle
from ..reply import count_tokens
from .exchange import EmbeddingsExchange
from .vectors import native_dimensions, vector

MAX_TEXTS = 96
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")


class CohereEmbedFormat(OpenAIStyle):
    name = "cohere-embed"

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) \
            -> EmbeddingsExchange:
        if not isinstance(body, dict) or not model:
            raise invalid("model is required", "model", None)
        texts = body.get("texts")
        if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TEXTS or \
                not all(isinstance(t, str) and t for t in texts):
            raise invalid(f"texts must hold 1 to {MAX_TEXTS} non-empty strings", "texts", None)
        if body.get("input_type") not in INPUT_TYPES:
            raise invalid(f"input_type must be one of {', '.join(INPUT_TYPES)}", "input_type", None)
        native = native_dimensions(model)
        dimensions = body.get("output_dimension", native)
        if not is_integer(dimensions) or not 1 <= dimensions <= native:
            raise invalid(f"output_dimension must be from 1 to {native}", "output_dimension", None)
        floats = [vector(model, dimensions, text)[0] for text in texts]
        tokens = sum(count_tokens(text) for text in texts)
        return EmbeddingsExchange({"id": "sim-embed", "response_type": "embeddings_by_type",
                                   "embeddings": {"float": floats}, "texts": texts,
                                   "meta": {"billed_units": {"input_tokens": tokens}}})


COHERE_EMBED = CohereEmbedFormat()

__all__ = ["COHERE_EMBED", "CohereEmbedFormat"]
