"""Embeddings in the providers' wire formats: OpenAI's `/v1/embeddings` (`openai_format`) and Gemini's
`:batchEmbedContents` / `:embedContent` (`gemini_format`), answered with deterministic vectors
(`vectors`) through the same server machinery — recording, behaviours, failures — as chat."""

from .gemini_format import GEMINI_EMBEDDINGS, GeminiEmbeddingsFormat
from .openai_format import OPENAI_EMBEDDINGS, OpenAIEmbeddingsFormat
from .vectors import native_dimensions, vector

__all__ = ["GEMINI_EMBEDDINGS", "OPENAI_EMBEDDINGS", "GeminiEmbeddingsFormat", "OpenAIEmbeddingsFormat",
           "native_dimensions", "vector"]
