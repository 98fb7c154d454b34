"""The Google Gemini API wire format (Google AI Studio, `generativelanguage.googleapis.com`).

One module per concern: `params` (the parameter table), `convert` (its converters and the thinking
budget), `schema` (JSON Schema → Gemini's OpenAPI subset), `messages` (messages → `contents`), `request`,
`response`, `stream` (the per-stream translator) and `errors`; `adapter` ties them to the `Adapter` protocol.
"""

from crossroads.providers.gemini.adapter import WIRE_FORMAT, Gemini
from crossroads.providers.gemini.params import PARAMS
from crossroads.providers.gemini.stream import GeminiStream

__all__ = ["PARAMS", "WIRE_FORMAT", "Gemini", "GeminiStream"]
