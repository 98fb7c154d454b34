"""Embeddings in the providers' wire formats: OpenAI's `/v1/embeddings` (`openai_format`), Gemini's
`:batchEmbedContents` / `:embedContent` (`gemini_format`) and Cohere's `/v2/embed` (`cohere_format`),
answered with deterministic vectors (`vectors`) through the same server machinery — recording,
behaviours, failures — as chat."""

from .cohere_format import COHERE_EMBED, CohereEmbedFormat
from .gemini_format import GEMINI_EMBEDDINGS, GeminiEmbeddingsFormat
from .openai_format import OPENAI_EMBEDDINGS, OpenAIEmbeddingsFormat
from .vectors import native_dimensions, vector

__all__ = [
           "COHERE_EMBED",
           "GEMINI_EMBEDDINGS",
           "OPENAI_EMBEDDINGS",
           "CohereEmbedFormat",
           "GeminiEmbeddingsFormat",
           "OpenAIEmbeddingsFormat",
           "native_dimensions",
           "vector",
]
