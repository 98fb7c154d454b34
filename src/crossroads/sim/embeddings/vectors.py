"""Deterministic embeddings: the same text, model and dimensions always give the same unit vector, and
different texts give different ones (a hash of the three seeds every component).

Vectors are as long as the model's native size (`NATIVE_DIMENSIONS`, by the upstream model's name) unless
the request asks for `dimensions`. A vector is made once per (model, dimensions, text) and kept, as both
floats and OpenAI's base64 form, so a benchmark that sends the same inputs measures the gateway, not this.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import sys
from array import array
from collections.abc import Mapping
from typing import Final

#: Output sizes of real embedding models, by the name their own API uses (`models/` and vendor prefixes
#: dropped, lower-cased); any other model gets `DEFAULT_DIMENSIONS`.
NATIVE_DIMENSIONS: Final[Mapping[str, int]] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "mistral-embed": 1024,
    "codestral-embed": 1536,
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "voyage-3.5": 1024,
    "voyage-3.5-lite": 1024,
    "voyage-3-large": 1024,
    "qwen3-embedding-8b": 4096,
    "qwen3-embedding-4b": 2560,
    "qwen3-embedding-0.6b": 1024,
    "bge-m3": 1024,
    "bge-large-en-v1.5": 1024,
    "bge-base-en-v1.5": 768,
    "nomic-embed-text-v1.5": 768,
    "nomic-embed-text": 768,
    "all-minilm-l6-v2": 384,
}
DEFAULT_DIMENSIONS: Final = 1024
#: The largest vector the simulator makes (OpenAI's largest model).
MAX_DIMENSIONS: Final = 3072


def native_dimensions(model: str) -> int:
    name = model.rsplit("/", 1)[-1].lower()
    return NATIVE_DIMENSIONS.get(name, DEFAULT_DIMENSIONS)


@functools.lru_cache(maxsize=4096)
def vector(model: str, dimensions: int, text: str) -> tuple[list[float], str]:
    """(floats, base64 of little-endian float32) of one input's unit vector."""
    seed = f"{model}\x00{dimensions}\x00{text}".encode()
    raw = array("h")
    raw.frombytes(hashlib.shake_256(seed).digest(2 * dimensions))
    if sys.byteorder != "little":
        raw.byteswap()
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    floats = array("f", [v / norm for v in raw])
    # float32 values, so the float form and the base64 form decode to the same numbers.
    values = floats.tolist()
    if sys.byteorder != "little":
        floats.byteswap()
    return values, base64.b64encode(floats.tobytes()).decode("ascii")


__all__ = ["DEFAULT_DIMENSIONS", "MAX_DIMENSIONS", "NATIVE_DIMENSIONS", "native_dimensions", "vector"]
