"""An upstream simulator: a real HTTP server that speaks provider wire formats with deterministic replies.

Tests, CI, demos and benchmarks point the gateway at it instead of a real provider, and choose per
request how it behaves (slow, silent, failing, dropping, malformed) with directives; see `behaviour`.

    async with SimServer() as sim:
        sim.set_behaviour("gpt-4o", "ttft=200;tps=50")
        ...  # send requests to sim.url + "/v1"

Modules: `behaviour` (directives), `reply` (deterministic content), `wire` (the server/format contract),
`openai_chat` (the OpenAI Chat Completions format), `anthropic_messages` (the Anthropic Messages format),
`gemini` (the Gemini API format), `server` (the app, control API and `SimServer`).
"""

from .behaviour import Behaviour, DirectiveError
from .server import RecordedRequest, SimServer, SimState, create_app, run

__all__ = ["Behaviour", "DirectiveError", "RecordedRequest", "SimServer", "SimState", "create_app", "run"]
