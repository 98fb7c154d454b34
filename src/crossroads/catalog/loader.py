"""Load the catalog: the built-in TOML data, extra files merged over it, and provider settings from the
environment.

File format (the built-in `data/catalog.toml` is the reference example)::

    [providers.deepinfra]
    name = "DeepInfra"                      # display name, as in responses' `provider`
    wire_format = "openai_chat"             # one of `wire_formats.WIRE_FORMATS` (default "openai_chat")
    base_url = "https://api.deepinfra.com/v1/openai"
    api_key_env = "DEEPINFRA_API_KEY"       # the provider's conventional variable (optional)
    quirks = "deepinfra"                    # row of the wire format's quirk table (default "generic")
    local = false                           # true: a local server, enabled by a base URL, no key needed
    headquarters = "US"
    datacenters = ["US"]
    privacy_policy_url = "https://..."      # also terms_of_service_url, status_page_url
    data_policy = { training = false, retains_prompts = true, retention_days = 30 }
    headers = { "X-Title" = "Crossroads" }  # extra request headers (optional; never credentials)
    enabled = false                         # a local server usable without a base URL from the environment

    [providers.amazon-bedrock]              # a cloud (see data/cloud.toml)
    base_url = "https://bedrock-runtime.{region}.amazonaws.com"   # `{option}` is filled from `options`
    credentials = "aws"                     # aws | google | azure: the cloud's credential chain signs
                                            # requests when no API key is set (an `auth` option of "key"
                                            # turns it off; see providers/auth)
    options = { region = "us-east-1" }      # named settings and their defaults (optional); each is read
                                            # from CROSSROADS_PROVIDER_<S>_<NAME>, then from the variables
    options_env = { region = ["AWS_REGION", "AWS_DEFAULT_REGION"] }   # of options_env, then the default

    [models."meta-llama/llama-3.3-70b-instruct"]
    name = "Meta: Llama 3.3 70B Instruct"
    created = 1733356800                    # unix seconds
    description = "..."
    context_length = 131072                 # required
    input_modalities = ["text"]             # text | image | file | audio | video (default ["text"])
    output_modalities = ["text"]            # text | image | audio | embeddings (default ["text"])
    tokenizer = "Llama3"                    # also instruct_type, hugging_face_id
    knowledge_cutoff = "2023-12-01"         # strings, as are expiration_date
    features = { tools = true, response_format = true }   # the fields of `types.Features`
    reasoning = { supported_efforts = ["low", "medium", "high"], mandatory = false }   # `types.Reasoning`

    [[models."meta-llama/llama-3.3-70b-instruct".endpoints]]
    provider = "deepinfra"
    upstream_model = "meta-llama/Llama-3.3-70B-Instruct"
    tag = "deepinfra/turbo"                 # optional, default = provider slug
    quantization = "fp8"                    # one of `types.Quantization`
    context_length = 131072                 # optional, default = the model's
    max_completion_tokens = 16384           # optional, as is max_prompt_tokens
    pricing = { prompt = "0.23", completion = "0.40" }   # USD per MILLION tokens; request/image: per unit
    features = { structured_outputs = false }            # optional, overrides the model's features
                                            # (`web_search = true`: the provider's built-in web search)
    input_modalities = ["text"]             # optional, default = the model's
    supports_implicit_caching = false

    [routing]                               # operator-wide routing settings (optional)
    allow = ["openai", "anthropic"]         # only these providers (default: all)
    deny = ["perplexity"]                   # never these
    sort = "price"                          # default provider.sort: price | throughput | latency

Every table is checked strictly as its file is read (`document.py`): an unknown key, a value of the wrong type
or out of range, or an endpoint naming a provider no file defines, stops the gateway with a message naming
the file, the table and the key.

The built-in catalog is `data/catalog.toml` with every other `data/*.toml` merged over it in name order, so a
group of entries (a cloud's endpoints, say) can live in a file of its own.

Extra files (`CROSSROADS_CATALOG`, separated by the OS path separator) are merged in order: provider and
model tables merge key by key (a provider's `data_policy` too); an endpoint with the same `tag` (by default
its provider's slug) merges into the earlier one key by key; `disabled = true` removes a model or an endpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import tomli
from msgspec import structs

from crossroads.catalog.document import (
    CatalogDocument,
    EndpointTable,
    FeaturesTable,
    ModelTable,
    PricingTable,
    ProviderTable,
    Table,
    check_providers,
    parse,
)
from crossroads.catalog.types import (
    AUTH_KEY,
    SIMULATOR_SLUG,
    TOKEN_PRICES,
    Catalog,
    DataPolicy,
    Endpoint,
    Features,
    Model,
    Pricing,
    Provider,
    Reasoning,
)
from crossroads.catalog.wire_formats import DEFAULT, SPECS, WIRE_FORMATS
from crossroads.errors import ConfigError

BUILTIN: Final = "crossroads/catalog/data"
#: The built-in file every other built-in file is merged over; the rest follow in name order.
_BASE_FILE: Final = "catalog.toml"
_MILLION = Decimal(1_000_000)

T = TypeVar("T", bound=Table)


def env_name(slug: str) -> str:
    """`deepinfra` → `DEEPINFRA`, `llama.cpp` → `LLAMA_CPP`: the `<S>` of `CROSSROADS_PROVIDER_<S>_*`."""
    return "".join(ch if ch.isalnum() else "_" for ch in slug).upper()


def read_builtin() -> list[tuple[str, CatalogDocument]]:
    """The built-in catalog files with their names: `data/catalog.toml` first, then every other
    `data/*.toml` in name order (each merged over the ones before, like `CROSSROADS_CATALOG` files)."""
    data = resources.files("crossroads.catalog").joinpath("data")
    names = sorted(e.name for e in data.iterdir() if e.name.endswith(".toml") and e.name != _BASE_FILE)
    documents = []
    for name in [_BASE_FILE, *names]:
        source = f"{BUILTIN}/{name}"
        documents.append((source, parse(tomli.loads(data.joinpath(name).read_text("utf-8")), source)))
    return documents


def read_file(path: Path) -> CatalogDocument:
    try:
        with path.open("rb") as fh:
            document = tomli.load(fh)
    except OSError as exc:
        raise ConfigError(f"CROSSROADS_CATALOG: cannot read {path}: {exc.strerror}") from exc
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"CROSSROADS_CATALOG: {path} is not valid TOML: {exc}") from exc
    return parse(document, str(path))


def merge(base: CatalogDocument, extra: CatalogDocument) -> CatalogDocument:
    """Merge one catalog document over another (see the module docstring for the rules)."""
    providers = dict(base.providers)
    for slug, provider in extra.providers.items():
        old = providers.get(slug)
        providers[slug] = provider if old is None else structs.replace(
            _overlay(old, provider), data_policy=_merged(old.data_policy, provider.data_policy))
    models = dict(base.models)
    for model_id, model in extra.models.items():
        old_model = models.get(model_id)
        endpoints = {e.key: e for e in old_model.endpoints} if old_model else {}
        for endpoint in model.endpoints:
            old_endpoint = endpoints.get(endpoint.key)
            endpoints[endpoint.key] = endpoint if old_endpoint is None else _overlay(old_endpoint, endpoint)
        merged = model if old_model is None else _overlay(old_model, model)
        models[model_id] = structs.replace(merged, endpoints=tuple(endpoints.values()))
    return CatalogDocument(providers=providers, models=models, routing=_overlay(base.routing, extra.routing))


def _overlay(base: T, extra: T) -> T:
    """`extra`'s keys over `base`'s: what `extra` leaves out (None) keeps `base`'s value."""
    given = {name: getattr(extra, name) for name in extra.__struct_fields__}
    return structs.replace(base, **{name: value for name, value in given.items() if value is not None})


def _merged(base: T | None, extra: T | None) -> T | None:
    """`_overlay` of two tables either of which may be missing."""
    if base is None or extra is None:
        return base if extra is None else extra
    return _overlay(base, extra)


def simulator_base_url(environ: Mapping[str, str]) -> str | None:
    """The root URL of a simulator running elsewhere (`crossroads sim`), from
    `CROSSROADS_PROVIDER_SIMULATOR_BASE_URL`, the override every provider has; None when it is not set, and
    the built-in simulator serves. Like the simulator's `/providers` entry, it may end in `/v1`."""
    name = f"CROSSROADS_PROVIDER_{env_name(SIMULATOR_SLUG)}_BASE_URL"
    url = environ.get(name)
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: {url!r} is not an http(s) URL")
    return url.rstrip("/").removesuffix(SPECS[DEFAULT].root_path)


def load(
    extra_paths: Iterable[Path], environ: Mapping[str, str], *, simulator_url: str | None = None
) -> Catalog:
    sourced = [*read_builtin(), *((str(path), read_file(path)) for path in extra_paths)]
    document = functools.reduce(merge, [each for _, each in sourced])
    # Checked once all files are merged: a file may use a provider that a later one defines.
    known = set(document.providers) | ({SIMULATOR_SLUG} if simulator_url is not None else set())
    for source, each in sourced:
        check_providers(each, known, source)
    return _catalog(document, environ, simulator_url)


def build(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    simulator_url: str | None = None,
) -> Catalog:
    """Turn one catalog document, as read from TOML, into a `Catalog`, applying provider settings from
    `environ` (see `_catalog`)."""
    return _catalog(parse(document, "catalog"), environ, simulator_url)


def _catalog(document: CatalogDocument, environ: Mapping[str, str], simulator_url: str | None) -> Catalog:
    """Turn a merged catalog document into a `Catalog`, applying provider settings from `environ`.

    With `simulator_url` (the simulator's root URL), every model gets one more endpoint, served by the
    simulator in the wire format of the model's own provider — so a demo exercises the same adapter a real
    provider would. `CROSSROADS_PROVIDER_SIMULATOR_API_KEY` sets the key it is sent, like any provider's.
    """
    providers = {slug: _provider(slug, table, environ) for slug, table in document.providers.items()}
    simulators: dict[str, Provider] = {}
    if simulator_url is not None:
        api_key = environ.get(f"CROSSROADS_PROVIDER_{env_name(SIMULATOR_SLUG)}_API_KEY") or "simulator"
        for wire_format in WIRE_FORMATS:
            simulators[wire_format] = Provider(
                slug=SIMULATOR_SLUG,
                name="Simulator",
                wire_format=wire_format,
                base_url=simulator_url + SPECS[wire_format].root_path,
                api_key=api_key,
                quirks="simulator",
                local=True,
                data_policy=DataPolicy(training=False, retains_prompts=False),
            )
        providers[SIMULATOR_SLUG] = simulators[DEFAULT]
    models: dict[str, Model] = {}
    for model_id, table in document.models.items():
        if table.disabled:
            continue
        model = _model(model_id, table, providers)
        if simulators:
            model = _with_simulator(model, simulators)
        models[model_id] = model
    aliases: dict[str, str] = {}
    for provider in providers.values():
        aliases[provider.slug.lower()] = provider.slug
        aliases[provider.name.lower()] = provider.slug
    routing = document.routing
    allow = frozenset(aliases.get(p.lower(), p) for p in routing.allow or ())
    deny = frozenset(aliases.get(p.lower(), p) for p in routing.deny or ())
    for slug in sorted(allow | deny):
        if slug not in providers:
            raise ConfigError(f"[routing]: unknown provider {slug!r}")
    return Catalog(providers=providers, models=models, provider_aliases=aliases, routing_allow=allow,
                   routing_deny=deny, routing_sort=routing.sort)


_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z0-9_]+)\}")
#: What an option's value may hold: it goes into URLs (a region, a project id, an API version).
_OPTION_VALUE: Final = re.compile(r"[A-Za-z0-9._:-]+")


def _options(slug: str, table: ProviderTable, base_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """A provider's options (those the catalog names, and those its base URL uses):
    `CROSSROADS_PROVIDER_<S>_<NAME>`, else the first of its standard variables that is set, else the
    catalog's default; options without any value are left out."""
    prefix = f"CROSSROADS_PROVIDER_{env_name(slug)}_"
    defaults, standard = table.options or {}, table.options_env or {}
    options: dict[str, str] = {}
    for name in sorted(set(defaults) | set(standard) | set(_PLACEHOLDER.findall(base_url))):
        value = environ.get(prefix + env_name(name)) or next(
            (environ[var] for var in standard.get(name, ()) if environ.get(var)), None) or defaults.get(name)
        if value is None:
            continue
        if not _OPTION_VALUE.fullmatch(value):
            raise ConfigError(f"{prefix}{env_name(name)}: {value!r} is not a valid {name} "
                              "(letters, digits, '.', '_', ':' and '-')")
        options[name] = value
    return options


def _provider(slug: str, table: ProviderTable, environ: Mapping[str, str]) -> Provider:
    prefix = f"CROSSROADS_PROVIDER_{env_name(slug)}_"
    base_url = environ.get(prefix + "BASE_URL") or table.base_url
    if not base_url:
        raise ConfigError(f"provider {slug!r}: no base_url (set it in the catalog or in {prefix}BASE_URL)")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{prefix}BASE_URL: {base_url!r} is not an http(s) URL")
    options = _options(slug, table, base_url, environ)
    # `{option}` in the URL: a provider whose URL names an option without a value (a cloud region or
    # project nobody gave) is listed but cannot serve.
    missing = [name for name in _PLACEHOLDER.findall(base_url) if name not in options]
    base_url = _PLACEHOLDER.sub(lambda m: options.get(m[1], m[0]), base_url)
    api_key_env = table.api_key_env
    api_key = environ.get(prefix + "API_KEY") or (environ.get(api_key_env) if api_key_env else None)
    local = bool(table.local)
    # A local server is usable only once the user points Crossroads at it.
    enabled = (not local or bool(environ.get(prefix + "BASE_URL")) or bool(table.enabled)) and not missing
    policy = table.data_policy
    return Provider(
        slug=slug,
        name=slug if table.name is None else table.name,
        wire_format=table.wire_format or DEFAULT,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        api_key_env=api_key_env,
        quirks="generic" if table.quirks is None else table.quirks,
        local=local,
        enabled=enabled,
        headquarters=table.headquarters,
        datacenters=table.datacenters or (),
        privacy_policy_url=table.privacy_policy_url,
        terms_of_service_url=table.terms_of_service_url,
        status_page_url=table.status_page_url,
        data_policy=DataPolicy() if policy is None else DataPolicy(
            training=bool(policy.training),
            retains_prompts=policy.retains_prompts is not False,
            retention_days=policy.retention_days,
        ),
        headers=tuple((table.headers or {}).items()),
        # `auth = "key"`: the provider sends its key only, so without one it cannot serve.
        credentials=None if options.get("auth") == AUTH_KEY else table.credentials,
        options=tuple(options.items()),
    )


def _model(model_id: str, table: ModelTable, providers: Mapping[str, Provider]) -> Model:
    where = f"model {model_id!r}"
    if table.context_length is None:
        raise ConfigError(f"{where}: context_length is missing (a positive integer)")
    inputs = ("text",) if table.input_modalities is None else table.input_modalities
    outputs = ("text",) if table.output_modalities is None else table.output_modalities
    features = _features(table.features, Features())
    reasoning = None
    if table.reasoning is not None:
        reasoning = Reasoning(**_given(table.reasoning))
        features = dataclasses.replace(features, reasoning=True)
    endpoints = tuple(
        _endpoint(model_id, e, providers, features, table.context_length, frozenset(inputs))
        for e in table.endpoints
        if not e.disabled
    )
    tags = [e.tag for e in endpoints]
    if len(tags) != len(set(tags)):
        raise ConfigError(f"{where}: two endpoints share a tag; give one a distinct 'tag'")
    return Model(
        id=model_id,
        name=model_id if table.name is None else table.name,
        created=table.created or 0,
        description=table.description or "",
        context_length=table.context_length,
        input_modalities=inputs,
        output_modalities=outputs,
        tokenizer=table.tokenizer,
        instruct_type=table.instruct_type,
        hugging_face_id=table.hugging_face_id,
        knowledge_cutoff=table.knowledge_cutoff,
        expiration_date=table.expiration_date,
        features=features,
        reasoning=reasoning,
        endpoints=endpoints,
    )


def _endpoint(
    model_id: str,
    table: EndpointTable,
    providers: Mapping[str, Provider],
    model_features: Features,
    model_context: int,
    model_inputs: frozenset[str],
) -> Endpoint:
    slug = table.provider
    where = f"model {model_id!r}, endpoint {table.tag or slug!r}"
    if slug is None or slug not in providers:
        raise ConfigError(f"{where}: unknown provider {slug!r}")
    return Endpoint(
        model_id=model_id,
        provider=providers[slug],
        tag=table.tag or slug,
        upstream_model=table.upstream_model or model_id.split("/", 1)[1],
        context_length=model_context if table.context_length is None else table.context_length,
        max_completion_tokens=table.max_completion_tokens,
        max_prompt_tokens=table.max_prompt_tokens,
        quantization=table.quantization,
        pricing=_pricing(table.pricing, where),
        features=_features(table.features, model_features),
        input_modalities=model_inputs if table.input_modalities is None else frozenset(table.input_modalities),
        supports_implicit_caching=bool(table.supports_implicit_caching),
    )


def _with_simulator(model: Model, simulators: Mapping[str, Provider]) -> Model:
    """Add the simulator as one more endpoint of `model`, speaking the wire format of the model's cheapest
    hosted endpoint and priced like it, so that usage and cost figures in a demo look like real ones."""
    if any(e.provider.slug == SIMULATOR_SLUG for e in model.endpoints):
        return model
    hosted = [e for e in model.endpoints if not e.provider.local] or list(model.endpoints)
    reference = min(hosted, key=lambda e: e.pricing.blended(), default=None)
    pricing = reference.pricing if reference else Pricing(prompt=Decimal(0), completion=Decimal(0))
    wire_format = reference.provider.wire_format if reference else DEFAULT
    endpoint = Endpoint(
        model_id=model.id,
        provider=simulators[wire_format],
        tag=SIMULATOR_SLUG,
        upstream_model=model.id if not reference or SPECS[wire_format].simulator_takes_catalog_ids
        else reference.upstream_model,
        context_length=model.context_length,
        max_completion_tokens=max(
            (e.max_completion_tokens or 0 for e in model.endpoints), default=0
        ) or None,
        max_prompt_tokens=None,
        quantization="unknown",
        pricing=pricing,
        features=dataclasses.replace(model.features, tools=True, response_format=True, structured_outputs=True,
                                     logprobs=True),
        input_modalities=frozenset(model.input_modalities),
    )
    return dataclasses.replace(model, endpoints=(*model.endpoints, endpoint))


def _pricing(table: PricingTable | None, where: str) -> Pricing:
    if table is None:
        raise ConfigError(f"{where}: pricing needs at least 'prompt' and 'completion'")
    return Pricing(**{key: value / _MILLION if key in TOKEN_PRICES else value
                      for key, value in _given(table).items()})


def _features(table: FeaturesTable | None, base: Features) -> Features:
    return base if table is None else dataclasses.replace(base, **_given(table))


def _given(table: Table) -> dict[str, Any]:
    """The keys a table sets."""
    return {name: value for name in table.__struct_fields__ if (value := getattr(table, name)) is not None}


__all__ = ["BUILTIN", "build", "env_name", "load", "merge", "read_builtin", "read_file", "simulator_base_url"]
