"""The Gemini API wire format (Google AI Studio):

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent      `?alt=sse` for server-sent events

Authenticated by the `x-goog-api-key` header or the `key` query parameter (403 PERMISSION_DENIED without
one). The model is named in the path; directives after `#` arrive URL-encoded (`%23`) and are decoded by the
router. Requests are checked the way the API checks them (Gemini API reference,
https://ai.google.dev/api/generate-content, and the troubleshooting guide's error table): unknown fields
("Unknown name ... Cannot find field"; camelCase and snake_case names are both accepted, as by the real
proto-JSON parser), empty `contents` or `parts`, roles other than `user` / `model`, a part with no or two
data fields, bad base64, out-of-range `generationConfig` values, `Schema` objects outside Gemini's OpenAPI
subset (so `additionalProperties`, `$ref` or `const` are rejected), an OBJECT function `parameters` without
properties, a `functionResponse` that does not answer the previous turn's `functionCall`s (by name and
count), and — for `gemini-3*` models — a function call of the current turn sent back without its
`thoughtSignature`. Errors have Google's shape: `{"error": {"code", "message", "status"}}`.

What the reply contains, in order of precedence:
  * function calls, when `functionDeclarations` are given, the calling mode is not NONE, the last turn is
    not a function response, and either the mode is ANY (the functions named in the last user text, else
    the first allowed one) or the last user text names functions (case-insensitive; all of them are called,
    in parallel); arguments are generated from the declaration's `parameters` / `parametersJsonSchema`;
  * JSON, for `responseMimeType: application/json`: an instance of `responseSchema` / `responseJsonSchema`,
    else `{"reply": <text>}`;
  * a quote of the function responses of the last turn ("Tool result: ..."), after a tool round trip;
  * otherwise deterministic prose of `tokens` tokens (default 8-40, from the conversation hash); with a
    `google_search` tool, grounded: the candidate's `groundingMetadata` holds the query, three sources
    (`sim/search.py`'s pages behind `grounding-api-redirect` URLs) and two `groundingSupports` segments.
Thinking: with `thinkingConfig.includeThoughts` the candidate starts with a thought part (deterministic
text) and its first answer part carries a `thoughtSignature`; thought tokens (the `reasoning` directive,
else 12-31, capped by `thinkingBudget`) are reported as `thoughtsTokenCount` and count towards
`maxOutputTokens`, as on Gemini 2.5. `candidateCount` gives that many candidates, `stopSequences` cut the
text (STOP), the output cap ends it with MAX_TOKENS. The `cached=n` directive is reported as
`cachedContentTokenCount`.

Usage: prompt tokens are the tokenizer count of every text part (system instruction included), of each
function call's and response's JSON, plus 258 per inline or file part; candidate tokens are the output
tokens (function-call arguments for calls) summed over candidates.

Streams (`alt=sse`) send one `GenerateContentResponse` per event, framed `data: <json>\\r\\n\\r\\n` as
Google does: thoughts, then text pieces (`chunk_tokens` per event) or all of a candidate's function calls
at once, then a last event with `finishReason` and the full `usageMetadata`. Without `alt=sse` the same
objects are streamed as one JSON array. An in-band error is an event holding `{"error": {...}}`.

Modules: `validate` (request checks) on `proto` (proto-JSON fields and scalars), `plan` (what the reply says),
`render` (body and stream), `errors` (Google's error answers).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..behaviour import Behaviour
from ..wire import SimError
from .errors import MISSING_KEY, error_body, invalid, status_error
from .plan import TOKENS_PER_MEDIA, count_prompt_tokens
from .render import GeminiExchange
from .validate import check_request

__all__ = ["GEMINI", "TOKENS_PER_MEDIA", "GeminiExchange", "GeminiFormat", "count_prompt_tokens"]


class GeminiFormat:
    """`WireFormat` for the Gemini API."""

    name = "gemini"

    def __init__(self) -> None:
        self._serial = 0

    def authenticate(self, request: web.Request) -> None:
        if not request.headers.get("x-goog-api-key", "").strip() and not request.query.get("key", "").strip():
            raise SimError(403, error_body(403, MISSING_KEY))

    def model_of(self, request: web.Request, body: Any) -> str | None:
        model = request.match_info.get("model")
        return model.removeprefix("models/") if model else None

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> SimError:
        return SimError(status, error_body(status, message))

    def invalid_json(self) -> SimError:
        return invalid("Invalid JSON payload received. Unexpected token.")

    def status_error(self, status: int, model: str, retry_after: float | None) -> SimError:
        return status_error(status, model, retry_after)

    def prepare(self, request: web.Request, body: Any, model: str | None, behaviour: Behaviour) -> GeminiExchange:
        if not model:
            raise SimError(404, error_body(404, "Requested entity was not found."))
        parsed = check_request(request, body, model)
        self._serial += 1
        return GeminiExchange(parsed, behaviour, self._serial)


GEMINI = GeminiFormat()
"""The instance the server routes to (its only state is a serial number that keeps ids unique)."""
