"""The catalog's value types: providers, models, their endpoints and prices.

Everything here is immutable once the catalog is loaded; routing and the API read it without locks.
Prices are kept as exact `Decimal` USD per unit (per token for token prices), as OpenRouter publishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal, NamedTuple

from crossroads.catalog.wire_formats import WireFormat

#: Price components, named as in OpenRouter's `pricing` objects. Token prices are USD per token.
TOKEN_PRICES: Final = (
    "prompt",
    "completion",
    "input_cache_read",
    "input_cache_write",
    "input_cache_write_1h",
    "internal_reasoning",
    "image_token",
    "audio",
)
UNIT_PRICES: Final = ("request", "image", "web_search")
PRICE_KEYS: Final = TOKEN_PRICES + UNIT_PRICES

Quantization = Literal["int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32",
                       "unknown"]
InputModality = Literal["text", "image", "file", "audio", "video"]
OutputModality = Literal["text", "image", "audio", "embeddings", "rerank"]

#: A cloud's own credential chain, used when a provider has no API key: AWS (Signature Version 4 with the
#: credentials of botocore's chain), Google (OAuth2 tokens from google-auth's Application Default
#: Credentials), Azure (Entra ID tokens from azure-identity).
Credentials = Literal["aws", "google", "azure"]
#: The value of a provider's `auth` option that turns its credential chain off: only its API key is sent
#: (the other values are the chains' own names, `providers/auth`).
AUTH_KEY: Final = "key"

SIMULATOR_SLUG: Final = "simulator"


_PICO: Final = Decimal(10) ** 12


class PicoPrices(NamedTuple):
    """Every price in integer picodollars (1e-12 USD) per unit, with the fallbacks of `ledger/cost.py`
    applied (a cache read without its own price costs the prompt price, and so on)."""

    prompt: int
    completion: int
    cache_read: int
    cache_write: int
    cache_write_1h: int
    reasoning: int
    image_token: int
    audio: int
    request: int
    image: int
    web_search: int


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per unit; `None` means the endpoint does not charge (or does not offer) that component."""

    prompt: Decimal
    completion: Decimal
    input_cache_read: Decimal | None = None
    input_cache_write: Decimal | None = None
    input_cache_write_1h: Decimal | None = None
    internal_reasoning: Decimal | None = None
    image_token: Decimal | None = None
    audio: Decimal | None = None
    request: Decimal | None = None
    image: Decimal | None = None
    web_search: Decimal | None = None
    discount: Decimal = Decimal(0)
    #: Derived at construction, for the request path: the prices as exact integers (None when some price
    #: is finer than a picodollar), and the blended price as a float for ranking endpoints.
    picos: PicoPrices | None = field(init=False, compare=False, repr=False)
    rank: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank", float(self.blended()))
        object.__setattr__(self, "picos", self._picos())

    def _picos(self) -> PicoPrices | None:
        def pico(value: Decimal | None, default: Decimal) -> int | None:
            scaled = (default if value is None else value) * _PICO
            return int(scaled) if scaled == scaled.to_integral_value() else None

        zero = Decimal(0)
        write = self.input_cache_write if self.input_cache_write is not None else self.prompt
        values = (
            pico(self.prompt, zero), pico(self.completion, zero), pico(self.input_cache_read, self.prompt),
            pico(write, zero), pico(self.input_cache_write_1h, write), pico(self.internal_reasoning, self.completion),
            pico(self.image_token, self.completion), pico(self.audio, self.prompt), pico(self.request, zero),
            pico(self.image, zero), pico(self.web_search, zero),
        )
        if any(v is None for v in values):
            return None
        return PicoPrices(*values)  # type: ignore[arg-type]

    def blended(self) -> Decimal:
        """The price used to rank endpoints: prompt and completion per token, weighted 3:1 like a typical
        chat request (long prompt, shorter answer)."""
        return (self.prompt * 3 + self.completion) / 4

    def is_free(self) -> bool:
        return self.rank == 0 and not self.request

    def public(self) -> dict[str, str]:
        """OpenRouter's `pricing` object: strings, USD per unit, only the components that are set."""
        out = {"prompt": _plain(self.prompt), "completion": _plain(self.completion)}
        for key in PRICE_KEYS[2:]:
            value = getattr(self, key)
            if value is not None:
                out[key] = _plain(value)
        return out


def _plain(value: Decimal) -> str:
    """`Decimal('0.0000025')` → `"0.0000025"`, never scientific notation."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """What a provider does with prompts, for `provider.data_collection` and `provider.zdr`."""

    training: bool = False
    retains_prompts: bool = True
    retention_days: int | None = None

    @property
    def zdr(self) -> bool:
        return not self.training and not self.retains_prompts


@dataclass(frozen=True, slots=True)
class Provider:
    slug: str
    name: str
    wire_format: WireFormat
    base_url: str
    api_key: str | None
    api_key_env: str | None = None
    quirks: str = "generic"
    #: A local server (Ollama, vLLM, ...): needs no key, but is off until the user gives its base URL.
    local: bool = False
    enabled: bool = True
    headquarters: str | None = None
    datacenters: tuple[str, ...] = ()
    privacy_policy_url: str | None = None
    terms_of_service_url: str | None = None
    status_page_url: str | None = None
    data_policy: DataPolicy = field(default_factory=DataPolicy)
    #: Extra request headers the provider wants (e.g. attribution); never credentials.
    headers: tuple[tuple[str, str], ...] = ()
    #: The cloud credential chain that signs requests when there is no API key (None: keys only).
    credentials: Credentials | None = None
    #: Named settings (region, project, api_version...), resolved from the catalog and the environment.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def configured(self) -> bool:
        """A provider can serve when it has a key or a cloud credential chain, or is an enabled local server
        (which needs none)."""
        return self.enabled and (self.local or bool(self.api_key) or self.credentials is not None)

    def option(self, name: str) -> str | None:
        return next((value for key, value in self.options if key == name), None)


@dataclass(frozen=True, slots=True)
class Reasoning:
    supported_efforts: tuple[str, ...] | None = None
    default_effort: str | None = None
    default_enabled: bool = False
    supports_max_tokens: bool = False
    mandatory: bool = False


@dataclass(frozen=True, slots=True)
class Features:
    """What a model (or one endpoint of it) can do beyond plain chat."""

    tools: bool = False
    tool_choice: bool = True
    response_format: bool = False
    structured_outputs: bool = False
    logprobs: bool = False
    reasoning: bool = False
    seed: bool = True
    #: The provider's built-in web search (OpenAI's search models, Anthropic's `web_search` server tool,
    #: Gemini's `google_search`), asked for with `web_search_options` or the `web` plugin.
    web_search: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    model_id: str
    provider: Provider
    tag: str
    upstream_model: str
    context_length: int
    max_completion_tokens: int | None
    max_prompt_tokens: int | None
    quantization: str | None
    pricing: Pricing
    features: Features
    input_modalities: frozenset[str]
    supports_implicit_caching: bool = False

    @property
    def key(self) -> str:
        """Stable identity of the endpoint, used for health statistics and routing traces."""
        return f"{self.model_id}|{self.tag}"

    @property
    def is_simulator(self) -> bool:
        return self.provider.slug == SIMULATOR_SLUG


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    name: str
    created: int
    description: str
    context_length: int
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    tokenizer: str | None
    instruct_type: str | None
    hugging_face_id: str | None
    knowledge_cutoff: str | None
    expiration_date: str | None
    features: Features
    reasoning: Reasoning | None
    endpoints: tuple[Endpoint, ...]

    @property
    def author(self) -> str:
        return self.id.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: dict[str, Provider]
    models: dict[str, Model]
    #: Provider display names and slugs (lower-cased) → slug, so `provider.order` accepts either.
    provider_aliases: dict[str, str]
    #: Operator-wide routing settings from the catalog's `[routing]` table: provider slugs always allowed
    #: (empty: all) and never used, and a default `provider.sort`.
    routing_allow: frozenset[str] = frozenset()
    routing_deny: frozenset[str] = frozenset()
    routing_sort: str | None = None

    def provider_slug(self, name: str) -> str | None:
        return self.provider_aliases.get(name.lower())
