"""What every provider adapter is: the parameter-table row types, the adapter protocol, and the values that
cross the seam between routing and adapters.

An adapter translates one *wire format* (OpenAI Chat Completions, Anthropic Messages, Gemini) in both
directions. It never does I/O: `providers/transport.py` sends what `build_request` returns and hands the
bytes back to `parse_response`, `parse_error` or a `StreamTranslator`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

from crossroads.catalog.types import Endpoint, Features
from crossroads.errors import UpstreamError
from crossroads.providers.sse import SSEDecoder, StreamDecoder
from crossroads.schema.request import ChatRequest
from crossroads.schema.usage import Usage

# --- Parameter tables -------------------------------------------------------------------------------------
# Each row says what happens to one OpenAI/OpenRouter request parameter on the way to a provider.


@dataclass(frozen=True, slots=True)
class Keep:
    """Sent as is, under the same name."""

    needs: str | None = None  # a `Features` flag the model must have, e.g. "tools"


@dataclass(frozen=True, slots=True)
class Rename:
    """Sent under another name (a dotted name nests: `generationConfig.topP`), optionally converted."""

    to: str
    convert: Callable[[Any], Any] | None = None
    needs: str | None = None


@dataclass(frozen=True, slots=True)
class Convert:
    """Translated by a function that may write several upstream fields: `fn(value, params, out)`, where
    `params` are the request's `ChatRequest.params`."""

    fn: Callable[[Any, Mapping[str, Any], dict[str, Any]], None]
    needs: str | None = None


@dataclass(frozen=True, slots=True)
class Unsupported:
    """The provider lacks it; dropped, as OpenRouter drops parameters a provider does not take."""

    needs: None = None


Row = Keep | Rename | Convert | Unsupported
ParamTable = Mapping[str, Row]

#: Parameters that only describe what a model can do; they are never sent anywhere.
CAPABILITY_FLAGS: Final = frozenset({"structured_outputs"})


def supported(table: ParamTable, features: Features) -> frozenset[str]:
    """The parameters a table carries for an endpoint with these features: OpenRouter's
    `supported_parameters`, derived rather than typed by hand."""
    out = {
        name for name, row in table.items()
        if not isinstance(row, Unsupported) and (row.needs is None or getattr(features, row.needs))
    }
    if features.structured_outputs and "response_format" in out:
        out.add("structured_outputs")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Plan:
    """An endpoint's parameter handling, resolved once: the rows of the parameters it takes, and their names
    (its `supported_parameters`)."""

    rows: Mapping[str, Row]
    supported: frozenset[str]


def plan(table: ParamTable, features: Features, without: frozenset[str] = frozenset()) -> Plan:
    """The plan for an endpoint with these features; `without` names parameters it must not take even so."""
    names = supported(table, features) - without
    return Plan(rows={k: v for k, v in table.items() if k in names}, supported=names)


PlanT = TypeVar("PlanT", bound=Plan)


class Plans(Generic[PlanT]):
    """Each endpoint's plan, made on first use and kept: an adapter asks for it on every request."""

    __slots__ = ("_make", "_plans")

    def __init__(self, make: Callable[[Endpoint], PlanT]) -> None:
        self._make = make
        self._plans: dict[str, PlanT] = {}

    def __call__(self, endpoint: Endpoint) -> PlanT:
        found = self._plans.get(endpoint.key)
        if found is None:
            found = self._plans[endpoint.key] = self._make(endpoint)
        return found


def put(out: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `out["a"]["b"] = value` for the name `a.b`, creating the intermediate objects."""
    *parents, leaf = dotted.split(".")
    node = out
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def apply_params(rows: Mapping[str, Row], params: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Each of the request's parameters through its row, in the client's order. A parameter without a row
    is not sent (the plan leaves out `Unsupported` rows and those the endpoint's features rule out)."""
    for key, value in params.items():
        row = rows.get(key)
        if row is None:
            continue
        if isinstance(row, Keep):
            out[key] = value
        elif isinstance(row, Rename):
            put(out, row.to, row.convert(value) if row.convert else value)
        elif isinstance(row, Convert):
            row.fn(value, params, out)


# --- Values crossing the seam -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    #: Every provider call is a POST; a web search API may be read with a GET (`providers/search.py`).
    method: str = "POST"


@dataclass(slots=True)
class Completion:
    """A non-streamed reply, translated: OpenAI-shaped `choices` (with `finish_reason` normalised and the
    provider's own value in `native_finish_reason`), usage, and the extra top-level fields to pass on."""

    choices: list[dict[str, Any]]
    usage: Usage | None
    extra: dict[str, Any] = field(default_factory=dict)  # system_fingerprint, service_tier, ...
    upstream_id: str | None = None


#: One chunk for the client, without the gateway's own top-level fields (`id`, `provider`, `model`,
#: `object`, `created`, and a translator's `head_fields`): the remaining members, at least `choices`.
Piece = dict[str, Any]


class StreamTranslator:
    """Turns one upstream stream, event by event, into OpenAI `chat.completion.chunk` pieces; each wire
    format subclasses it. This base holds what every stream reports back to the gateway.

    `feed` returns the pieces to send for one upstream event; an empty list means "nothing to send". It
    raises `UpstreamError` for an in-band upstream error. `head_fields` (e.g. `system_fingerprint`) are
    known once the first piece is out and go in every chunk's head.
    """

    __slots__ = ("completion_chars", "endpoint", "finish_reason", "framing", "head_fields",
                 "native_finish_reason", "upstream_id", "usage")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.upstream_id: str | None = None
        self.head_fields: dict[str, Any] = {}
        #: Characters of content and tool-call arguments so far: the estimate when no usage comes.
        self.completion_chars = 0
        #: What splits the stream's bytes into events: server-sent events, unless the provider frames a
        #: format's events otherwise (Bedrock's AWS event streams carry Anthropic's events).
        self.framing: Callable[[], StreamDecoder] = SSEDecoder

    def decoder(self) -> StreamDecoder:
        """A decoder for this stream's framing, yielding the events `feed` takes."""
        return self.framing()

    def feed(self, event: str | None, data: bytes) -> list[Piece]:
        raise NotImplementedError

    def close(self) -> list[Piece]:
        """Called once the upstream stream ended cleanly; returns any last chunks (e.g. a finish chunk the
        provider never sent)."""
        return []


class Adapter(Protocol):
    @property
    def wire_format(self) -> str: ...

    @property
    def passthrough_headers(self) -> frozenset[str]:
        """Client request headers (lower-case) this format forwards to its providers, e.g. a beta flag."""
        ...

    def supported_parameters(self, endpoint: Endpoint) -> frozenset[str]: ...

    def build_request(self, request: ChatRequest, endpoint: Endpoint) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, endpoint: Endpoint) -> Completion: ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str], endpoint: Endpoint) \
            -> UpstreamError: ...

    def stream_translator(self, request: ChatRequest, endpoint: Endpoint) -> StreamTranslator: ...


# --- Shared normalisation ---------------------------------------------------------------------------------

#: Provider finish reasons → OpenRouter's normalised set (tool_calls, stop, length, content_filter, error).
FINISH_REASONS: Final[Mapping[str, str]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "abort": "error",
}


def normalise_finish(native: str | None) -> str | None:
    if native is None:
        return None
    return FINISH_REASONS.get(native, "stop")


#: OpenRouter's reasoning effort → thinking budget, as a share of the output cap (providers that take a
#: token budget rather than an effort: Anthropic, Gemini).
EFFORT_RATIOS: Final[Mapping[str, float]] = {
    "max": 0.95, "xhigh": 0.95, "high": 0.8, "medium": 0.5, "low": 0.2, "minimal": 0.1,
}
MIN_THINKING_BUDGET: Final = 1024
MAX_THINKING_BUDGET: Final = 128_000


def effort_budget(effort: str | None, max_output: int, limit: int = MAX_THINKING_BUDGET) -> int:
    """OpenRouter's mapping: budget = max(min(max_output × ratio, limit), 1024)."""
    ratio = EFFORT_RATIOS.get(effort or "medium", EFFORT_RATIOS["medium"])
    return max(min(int(max_output * ratio), limit), MIN_THINKING_BUDGET)


def malformed(endpoint: Endpoint, body: bytes) -> UpstreamError:
    """A reply that is not what the wire format promises: a 502, worth trying another provider for."""
    return UpstreamError(502, "Provider returned a malformed reply", provider=endpoint.provider.name,
                         raw=body[:500].decode("utf-8", "replace"), error_type="provider_unavailable")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `Retry-After` header (seconds form) or `retry-after-ms`; None when absent or a date."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        try:
            return float(value)
        except ValueError:
            return None
    return None
