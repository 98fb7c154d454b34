"""The clouds' ways of reaching a model whose format another package simulates: Amazon Bedrock's
InvokeModel (Anthropic's Messages body, streams in AWS event-stream framing) and Converse (its own format,
answered through the Messages simulator), Google Vertex AI (Gemini's
format, and Anthropic's through rawPredict) and Azure OpenAI (OpenAI's format, by deployment).

Each `WireFormat` here checks what the cloud adds — its credentials' presence, its URL, its body's version
field — and hands the request, reshaped as the model's own API would take it, to that API's simulator.
Signatures and tokens are not verified here (the simulator takes any); the tests' fakes do that.
"""

from .azure import AZURE_OPENAI
from .bedrock import BEDROCK
from .converse import CONVERSE
from .vertex import VERTEX_ANTHROPIC, VERTEX_GEMINI

__all__ = ["AZURE_OPENAI", "BEDROCK", "CONVERSE", "VERTEX_ANTHROPIC", "VERTEX_GEMINI"]
