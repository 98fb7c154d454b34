"""The catalog file format as types: what each table of a catalog file may hold, checked strictly as the file
is read, so that a typo or a wrong type stops the gateway with a message naming the file, the table and the key.

The format itself is described in `loader.py`'s docstring. Every field is optional here (TOML has no null, so
`None` always means "not given"): a file may override a single key of a table another file defined. What a
complete catalog must have (a context length, an endpoint's provider and prices) is checked after merging.

msgspec does the checking: it is strict about types (no `true` for a number, no `1.0` for an integer), knows
`Literal` choices and numeric bounds, and refuses unknown keys. Dictionary keys (provider slugs, model ids)
do not appear in its error paths, so `parse` converts table by table and names each table itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

import msgspec
from msgspec import Meta, Struct

from crossroads.catalog.types import Credentials, InputModality, OutputModality, Quantization
from crossroads.catalog.wire_formats import WireFormat
from crossroads.errors import ConfigError

Sort = Literal["price", "throughput", "latency"]
Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
HttpUrl = Annotated[str, Meta(pattern=r"^https?://")]


class Table(Struct, forbid_unknown_fields=True):
    """A table of a catalog file: unknown keys are an error."""


class DataPolicyTable(Table):
    training: bool | None = None
    retains_prompts: bool | None = None
    retention_days: NonNegative | None = None


class ProviderTable(Table):
    name: str | None = None
    wire_format: WireFormat | None = None
    base_url: HttpUrl | None = None
    api_key_env: str | None = None
    quirks: str | None = None
    local: bool | None = None
    #: A local server that needs no base URL from the environment to be used.
    enabled: bool | None = None
    headquarters: str | None = None
    datacenters: tuple[str, ...] | None = None
    privacy_policy_url: str | None = None
    terms_of_service_url: str | None = None
    status_page_url: str | None = None
    data_policy: DataPolicyTable | None = None
    headers: dict[str, str] | None = None
    #: Where credentials come from besides `api_key_env`: a cloud's own credential chain.
    credentials: Credentials | None = None
    #: Named settings (region, project, api_version...) with their defaults; `{name}` in `base_url` is
    #: replaced by the setting's value.
    options: dict[str, str] | None = None
    #: The standard variables each option is also read from, in order, after `CROSSROADS_PROVIDER_<S>_<NAME>`.
    options_env: dict[str, tuple[str, ...]] | None = None


class FeaturesTable(Table):
    """The fields of `types.Features`, each optional (a test holds the two together)."""

    tools: bool | None = None
    tool_choice: bool | None = None
    response_format: bool | None = None
    structured_outputs: bool | None = None
    logprobs: bool | None = None
    reasoning: bool | None = None
    seed: bool | None = None
    web_search: bool | None = None


class ReasoningTable(Table):
    """The fields of `types.Reasoning`."""

    supported_efforts: tuple[str, ...] | None = None
    default_effort: str | None = None
    default_enabled: bool | None = None
    supports_max_tokens: bool | None = None
    mandatory: bool | None = None


class PricingTable(Table):
    """Token prices in USD per million tokens, the others per unit (see `types.TOKEN_PRICES`), as written in
    the file. TOML strings keep them exact; numbers are accepted too."""

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
    discount: Decimal | None = None

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value is not None and not (value.is_finite() and value >= 0):
                # msgspec reports a ValueError raised here at this table's path.
                raise ValueError(f"`{name}` must be a non-negative number, not {value}")


class EndpointTable(Table):
    provider: str | None = None
    tag: str | None = None
    upstream_model: str | None = None
    context_length: Positive | None = None
    max_completion_tokens: Positive | None = None
    max_prompt_tokens: Positive | None = None
    quantization: Quantization | None = None
    pricing: PricingTable | None = None
    features: FeaturesTable | None = None
    input_modalities: tuple[InputModality, ...] | None = None
    supports_implicit_caching: bool | None = None
    disabled: bool | None = None

    @property
    def key(self) -> str:
        """What identifies the endpoint when files are merged: its tag, by default its provider's slug."""
        return str(self.tag or self.provider)


class ModelTable(Table):
    name: str | None = None
    created: NonNegative | None = None
    description: str | None = None
    context_length: Positive | None = None
    input_modalities: tuple[InputModality, ...] | None = None
    output_modalities: tuple[OutputModality, ...] | None = None
    tokenizer: str | None = None
    instruct_type: str | None = None
    hugging_face_id: str | None = None
    knowledge_cutoff: str | None = None
    expiration_date: str | None = None
    features: FeaturesTable | None = None
    reasoning: ReasoningTable | None = None
    endpoints: tuple[EndpointTable, ...] = ()
    disabled: bool | None = None


class RoutingTable(Table):
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] | None = None
    sort: Sort | None = None


class CatalogDocument(Struct):
    """One catalog file, or several merged."""

    providers: dict[str, ProviderTable] = {}
    models: dict[str, ModelTable] = {}
    routing: RoutingTable = msgspec.field(default_factory=RoutingTable)


class _Tables(Table):
    """The top level of a file, before each table is checked on its own."""

    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    routing: dict[str, Any] = {}


T = TypeVar("T", bound=Struct)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_FIELD_MESSAGE = re.compile(r"(Object contains unknown field|Object missing required field) `([^`]+)`")
_OWN_MESSAGE = re.compile(r"`([^`]+)` (.+)")
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[([^\]]+)\]")
#: msgspec's words → a catalog file's: TOML's names for kinds of values (and no `null`: TOML has none, it
#: only types "not given" here).
_WORDS: Final = ((" | null", ""), ("`object`", "table"), ("`array`", "array"), ("`decimal`", "a number"),
                 ("Invalid decimal string", "not a number"))
#: The choices of each key whose value is one of a few names, to list when a value is none of them.
_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "wire_format": get_args(WireFormat),
    "quantization": get_args(Quantization),
    "input_modalities": get_args(InputModality),
    "output_modalities": get_args(OutputModality),
    "sort": get_args(Sort),
    "credentials": get_args(Credentials),
}


def parse(document: Mapping[str, Any], source: str) -> CatalogDocument:
    """Check a catalog document as read from TOML (`source` names it in errors) and return it typed."""
    tables = _convert(document, _Tables, source, "", document)
    for model_id in tables.models:
        if model_id.count("/") != 1:
            raise ConfigError(f"{source}: [models.{_toml_key(model_id)}]: model ids look like 'author/slug'")
    return CatalogDocument(
        providers={slug: _convert(table, ProviderTable, source, f"providers.{_toml_key(slug)}", table)
                   for slug, table in tables.providers.items()},
        models={model_id: _convert(table, ModelTable, source, f"models.{_toml_key(model_id)}", table)
                for model_id, table in tables.models.items()},
        routing=_convert(tables.routing, RoutingTable, source, "routing", tables.routing),
    )


def _convert(value: Any, kind: type[T], source: str, table: str, raw: Any) -> T:
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), source, table, raw)) from exc


def _explain(message: str, source: str, table: str, raw: Any) -> str:
    """msgspec's `<problem> - at `$.a[0].b`` → `<source>: [<table>] <key>: <problem>`, in TOML's terms."""
    problem, _, where = message.partition(" - at `$")
    steps = [name or f"[{index}]" for name, index in _PATH_STEP.findall(where.rstrip("`"))]
    if match := _FIELD_MESSAGE.fullmatch(problem):
        steps.append(match[2])
        problem = "unknown key" if match[1].endswith("unknown field") else "missing"
    elif match := _OWN_MESSAGE.fullmatch(problem):
        steps.append(match[1])
        problem = match[2]
    for word, toml_word in _WORDS:
        problem = problem.replace(word, toml_word)
    names = [step for step in steps if not step.startswith("[")]
    if problem.startswith("Invalid enum value") and names and names[-1] in _CHOICES:
        problem += f" (one of {', '.join(_CHOICES[names[-1]])})"
    problem = problem[:1].lower() + problem[1:]
    heading = f"[{table}]" if table else "the top level"
    # A model's endpoints are an array of tables, `[[models."a/b".endpoints]]`: name the table by its place and
    # its tag or provider, and the key within it.
    if table.startswith("models.") and steps[:1] == ["endpoints"] and len(steps) > 1 and steps[1][1:-1].isdigit():
        index = int(steps[1][1:-1])
        endpoint = raw.get("endpoints", [])[index] if isinstance(raw, Mapping) else None
        label = endpoint.get("tag") or endpoint.get("provider") if isinstance(endpoint, Mapping) else None
        heading = f"[[{table}.endpoints]] #{index + 1}" + (f" ({label!r})" if label else "")
        steps = steps[2:]
    key = "".join(step if step.startswith("[") or not i else "." + step for i, step in enumerate(steps))
    return f"{source}: {heading}" + (f" {key}" if key else "") + f": {problem}"


def check_providers(document: CatalogDocument, known: set[str], source: str) -> None:
    """Every endpoint `document` adds names a provider of the merged catalog (`known`)."""
    for model_id, model in document.models.items():
        for index, endpoint in enumerate(model.endpoints):
            if endpoint.provider is not None and endpoint.provider not in known and not endpoint.disabled:
                raise ConfigError(f"{source}: [[models.{_toml_key(model_id)}.endpoints]] #{index + 1} provider: "
                                  f"unknown provider {endpoint.provider!r}")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["CatalogDocument", "EndpointTable", "FeaturesTable", "ModelTable", "PricingTable", "ProviderTable",
           "ReasoningTable", "RoutingTable", "Table", "check_providers", "parse"]
