"""OpenAI's embeddings format (`POST /v1/embeddings`), checked as OpenAI checks it: `model`, `input` (a
string, strings, token ids or lists of token ids; none empty; at most 2,048), `dimensions` (1 to the
model's size), `encoding_format` (`float` or `base64`). Usage counts the simulator's tokens of each text,
or the token ids given."""

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

MAX_INPUTS = 2048


class OpenAIEmbeddingsFormat(OpenAIStyle):
    """`WireFormat` for OpenAI embeddings; authentication and errors are OpenAI's, as for chat."""

    name = "openai-embeddings"

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) \
            -> EmbeddingsExchange:
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.", None, None)
        if not model:
            raise invalid("You must provide a model parameter.", "model", None)
        inputs = _inputs(body.get("input"))
        native = native_dimensions(model)
        dimensions = body.get("dimensions", native)
        if not is_integer(dimensions) or not 1 <= dimensions <= native:
            raise invalid(f"dimensions must be an integer from 1 to {native}.", "dimensions", None)
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise invalid("encoding_format must be 'float' or 'base64'.", "encoding_format", None)
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += count_tokens(item) if isinstance(item, str) else len(item)
            floats, packed = vector(model, dimensions, text)
            data.append({"object": "embedding", "index": index,
                         "embedding": packed if encoding == "base64" else floats})
        return EmbeddingsExchange({"object": "list", "data": data, "model": model,
                                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str) or (isinstance(value, list) and value and all(is_integer(v) for v in value)):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > MAX_INPUTS:
        raise invalid(f"'input' must be a string or an array of 1 to {MAX_INPUTS} inputs.", "input", None)
    for item in value:
        if not (isinstance(item, str) and item) and \
                not (isinstance(item, list) and item and all(is_integer(v) for v in item)):
            raise invalid("'input' items must be non-empty strings or arrays of token ids.", "input", None)
    return value


OPENAI_EMBEDDINGS = OpenAIEmbeddingsFormat()

__all__ = ["OPENAI_EMBEDDINGS", "OpenAIEmbeddingsFormat"]
