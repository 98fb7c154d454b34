"""The typed chat request: what a client asked for, parsed once (by `schema.chat.parse_chat_request`) and
read by routing, rate limits, accounting and every adapter.

The values are frozen: nothing downstream works a meaning out of the raw body again. They are msgspec
`Struct`s because one is built per request: a frozen Struct of `ChatRequest`'s size is built several times
faster than a frozen dataclass (which sets each field through `object.__setattr__`). Parameters a provider
takes as they are (sampling, tools, response format...) stay JSON values in `ChatRequest.params`, in the
client's order, for the adapters' parameter tables; fields no table knows wait in `ChatRequest.extra` for
the providers that accept them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
from msgspec import Struct

#: A chat message as the client sent it (checked by `schema.chat`).
Message = dict[str, Any]


class Reasoning(Struct, frozen=True):
    """`reasoning`, `reasoning_effort` and the legacy `include_reasoning`, reconciled.

    `enabled` is None when the request says nothing about reasoning (the model's default applies), False
    when it turns reasoning off (`reasoning.enabled: false` or the effort "none"), True otherwise: a
    non-empty `reasoning` object, an effort, or `include_reasoning: true`. `effort` is the effort asked for;
    a bare `enabled: true` asks for OpenRouter's default, "medium". `max_tokens` is an explicit thinking
    budget. `exclude` (`reasoning.exclude`, or `include_reasoning: false`): the model may reason, but the
    reply carries none of the reasoning text.
    """

    enabled: bool | None = None
    effort: str | None = None
    max_tokens: int | None = None
    exclude: bool = False


#: A request that says nothing about reasoning.
NO_REASONING: Final = Reasoning()


class ProviderPreferences(Struct, frozen=True):
    """OpenRouter's `provider` object, with its shorthands resolved.

    `sort` is the sort's name whether it came as a string or as `{by, partition}`. A throughput or latency
    threshold given as a bare number is the p50 one; each threshold is a tuple of (percentile as a fraction,
    limit). `max_price` holds exact per-million (prompt, completion, audio) or per-unit (request, image)
    limits.
    """

    order: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    require_parameters: bool = False
    data_collection: str = "allow"
    zdr: bool = False
    enforce_distillable_text: bool = False
    quantizations: tuple[str, ...] = ()
    sort: str | None = None
    sort_partition: str | None = None
    max_price: tuple[tuple[str, Decimal], ...] = ()
    preferred_min_throughput: tuple[tuple[float, float], ...] = ()
    preferred_max_latency: tuple[tuple[float, float], ...] = ()


#: A request without a `provider` object.
DEFAULT_PREFERENCES: Final = ProviderPreferences()


class Plugin(Struct, frozen=True):
    """One entry of `plugins`; `enabled: false` asks for nothing. `options` are its other fields, checked
    (`max_results`, `pdf`, `engine`...). `tool`: asked for as a server tool (web search in `tools`,
    `schema.server_tools`), which each API shows as a tool call in its reply."""

    id: str
    enabled: bool = True
    options: Mapping[str, Any] = {}
    tool: bool = False


class Native(Struct, frozen=True):
    """A request as its inbound API's client wrote it, for an upstream of the same wire format to receive
    without a translation round trip (e.g. a `/messages` body for an Anthropic Messages endpoint).

    `needs` names what only that wire format can serve (server tools, ...): another endpoint refuses the
    request rather than serving it without them.
    """

    wire_format: str
    body: Mapping[str, Any]
    needs: tuple[str, ...] = ()


class Applied(Struct, frozen=True):
    """What plugins did to a request before it was routed: the web searches made by the gateway's search
    backend, what they add to the prompt and the citations the reply carries as `annotations` — all three
    for the endpoints that use them (`plugins.web.uses_results`), which are charged the searches at their
    `web_search` price."""

    web_searches: int = 0
    web_context: str | None = None
    #: The backend that searched (its API's name) and how many results it found.
    web_engine: str | None = None
    web_results: int = 0
    #: What the web search looks for: the last user message (shown as the search's query where an API
    #: renders the search as a tool call).
    web_query: str | None = None
    annotations: tuple[Mapping[str, Any], ...] = ()
    #: The text of the request's PDFs once parsed, by their data, so each is parsed once whichever
    #: endpoints the request is tried on.
    parsed_files: dict[str, str] = {}


class ChatRequest(Struct, frozen=True):
    """A checked chat request."""

    #: The model, then the `models` fallbacks, without repeats.
    models: tuple[str, ...]
    messages: list[Message]
    stream: bool
    #: The output cap: `max_completion_tokens`, else `max_tokens`.
    max_output: int | None
    #: The documented parameters that go to providers through the adapters' tables, in the client's order.
    params: Mapping[str, Any]
    #: Fields no table knows, kept for providers that take extra parameters (e.g. Mistral's `safe_prompt`).
    extra: Mapping[str, Any]
    reasoning: Reasoning
    provider: ProviderPreferences
    tools: Sequence[Mapping[str, Any]]
    tool_choice: str | Mapping[str, Any] | None
    response_format: Mapping[str, Any] | None
    plugins: tuple[Plugin, ...]
    transforms: tuple[str, ...]
    user: str | None
    session_id: str | None
    metadata: Mapping[str, str]
    #: Every parameter an endpoint must support (`provider.require_parameters`); empty unless asked.
    required: frozenset[str]
    prompt_chars: int
    images: int
    has_files: bool
    has_audio: bool
    #: Client headers an adapter forwards (see `providers.registry.passthrough_headers`), lower-case names.
    headers: Mapping[str, str]
    #: The client's own body, when its API is an upstream wire format too (see `Native`).
    native: Native | None = None
    #: What the request's plugins added before it was routed (see `crossroads.plugins`); None without plugins.
    applied: Applied | None = None

    @property
    def model(self) -> str:
        return self.models[0]

    def plugin(self, plugin_id: str) -> Plugin | None:
        """The enabled plugin of that id, if the request has one."""
        for plugin in self.plugins:
            if plugin.id == plugin_id and plugin.enabled:
                return plugin
        return None

    @property
    def has_images(self) -> bool:
        return self.images > 0

    @property
    def completions(self) -> int:
        """How many choices the request asks for (`n`); each may be as long as `max_output`."""
        n: int = self.params.get("n", 1)
        return n

    def prompt_tokens_estimate(self) -> int:
        """A typical token count (≈4 characters per token), for routing by context length; the provider's
        own count is what gets billed."""
        return self.prompt_chars // 4 + 1

    def prompt_tokens_bound(self) -> int:
        """An upper bound on the prompt's tokens, for reserving spend: byte-level tokenizers never make more
        tokens than characters, plus chat-template overhead per message, tool definitions, and a generous
        allowance per image."""
        tools_chars = len(orjson.dumps(self.tools)) if self.tools else 0
        return self.prompt_chars + tools_chars + 32 * len(self.messages) + 1500 * self.images
