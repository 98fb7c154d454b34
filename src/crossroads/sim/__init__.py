"""An upstream simulator: a real HTTP server that speaks provider wire formats with deterministic replies.

Tests, CI, demos and benchmarks point the gateway at it instead of a real provider, and choose per
request how it behaves (slow, silent, failing, dropping, malformed) with directives; see `behaviour`.

    async with SimServer() as sim:
        sim.set_behaviour("gpt-4o", "ttft=200;tps=50")
        ...  # send requests to sim.url + "/v1"

Modules: `behaviour` (directives), `reply` (deterministic content), `wire` (the server/format contract),
`server` (the app, control API and `SimServer`). One package per wire format — `openai_chat` (OpenAI Chat
Completions), `anthropic_messages` (Anthropic Messages), `gemini` (the Gemini API) — each split into
`validate` (request checks, in the provider's own error shape), `plan` (what the reply says) and `render`
(the body and the stream), with `errors` for the provider's error answers. What the formats share lives once:
`checks` (JSON kinds, model, credentials) and `tools` (pairing tool answers with calls, choosing the tools a
reply calls).
"""

from .behaviour import Behaviour, DirectiveError
from .server import RecordedRequest, SimServer, SimState, create_app, run

__all__ = ["Behaviour", "DirectiveError", "RecordedRequest", "SimServer", "SimState", "create_app", "run"]
