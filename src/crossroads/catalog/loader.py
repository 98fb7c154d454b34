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
    privacy_policy_url = "https://..."
    data_policy = { training = false, retains_prompts = false }

    [models."meta-llama/llama-3.3-70b-instruct"]
    name = "Meta: Llama 3.3 70B Instruct"
    created = 1733356800                    # unix seconds
    context_length = 131072
    input_modalities = ["text"]
    tokenizer = "Llama3"
    features = { tools = true, response_format = true }
    reasoning = { supported_efforts = ["low", "medium", "high"], mandatory = false }   # reasoning models

    [[models."meta-llama/llama-3.3-70b-instruct".endpoints]]
    provider = "deepinfra"
    upstream_model = "meta-llama/Llama-3.3-70B-Instruct"
    tag = "deepinfra/turbo"                 # optional, default = provider slug
    quantization = "fp8"
    max_completion_tokens = 16384
    pricing = { prompt = "0.23", completion = "0.40" }   # USD per MILLION tokens; request/image: per unit
    features = { structured_outputs = false }            # optional, overrides the model's features

    [routing]                               # operator-wide routing settings (optional)
    allow = ["openai", "anthropic"]         # only these providers (default: all)
    deny = ["perplexity"]                   # never these
    sort = "price"                          # default provider.sort: price | throughput | latency

Extra files (`CROSSROADS_CATALOG`, separated by the OS path separator) are merged in order: provider and
model tables merge key by key; an endpoint with the same `tag` replaces the earlier one; `disabled = true`
removes a model or an endpoint.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from crossroads.catalog.types import (
    MODALITIES_IN,
    MODALITIES_OUT,
    PRICE_KEYS,
    QUANTIZATIONS,
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
from crossroads.catalog.wire_formats import DEFAULT, SPECS, WIRE_FORMATS, WireFormat
from crossroads.errors import ConfigError

_MILLION = Decimal(1_000_000)
_FEATURE_KEYS = frozenset(Features.__dataclass_fields__)
_REASONING_KEYS = frozenset(Reasoning.__dataclass_fields__)


def env_name(slug: str) -> str:
    """`deepinfra` → `DEEPINFRA`, `llama.cpp` → `LLAMA_CPP`: the `<S>` of `CROSSROADS_PROVIDER_<S>_*`."""
    return "".join(ch if ch.isalnum() else "_" for ch in slug).upper()


def read_builtin() -> dict[str, Any]:
    text = resources.files("crossroads.catalog").joinpath("data/catalog.toml").read_text("utf-8")
    return tomllib.loads(text)


def read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"CROSSROADS_CATALOG: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"CROSSROADS_CATALOG: {path} is not valid TOML: {exc}") from exc


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge one catalog document over another (see the module docstring for the rules)."""
    out = {"providers": dict(base.get("providers", {})), "models": dict(base.get("models", {})),
           "routing": {**base.get("routing", {}), **extra.get("routing", {})}}
    for slug, table in extra.get("providers", {}).items():
        merged_provider = {**out["providers"].get(slug, {}), **table}
        if "data_policy" in table:
            merged_provider["data_policy"] = {**out["providers"].get(slug, {}).get("data_policy", {}),
                                              **table["data_policy"]}
        out["providers"][slug] = merged_provider
    for model_id, table in extra.get("models", {}).items():
        merged = {**out["models"].get(model_id, {}), **{k: v for k, v in table.items() if k != "endpoints"}}
        endpoints = {_tag(e): e for e in out["models"].get(model_id, {}).get("endpoints", [])}
        for endpoint in table.get("endpoints", []):
            endpoints[_tag(endpoint)] = {**endpoints.get(_tag(endpoint), {}), **endpoint}
        merged["endpoints"] = list(endpoints.values())
        out["models"][model_id] = merged
    return out


def _tag(endpoint: Mapping[str, Any]) -> str:
    return str(endpoint.get("tag") or endpoint.get("provider"))


def build(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    simulator_url: str | None = None,
) -> Catalog:
    """Turn a merged catalog document into a `Catalog`, applying provider settings from `environ`.

    With `simulator_url` (the simulator's root URL), every model gets one more endpoint, served by the
    built-in simulator in the wire format of the model's own provider — so a demo exercises the same
    adapter a real provider would.
    """
    providers = {slug: _provider(slug, table, environ) for slug, table in document.get("providers", {}).items()}
    simulators: dict[str, Provider] = {}
    if simulator_url is not None:
        for wire_format in WIRE_FORMATS:
            simulators[wire_format] = Provider(
                slug=SIMULATOR_SLUG,
                name="Simulator",
                wire_format=wire_format,
                base_url=simulator_url + SPECS[wire_format].root_path,
                api_key="simulator",
                quirks="simulator",
                local=True,
                data_policy=DataPolicy(training=False, retains_prompts=False),
            )
        providers[SIMULATOR_SLUG] = simulators[DEFAULT]
    models: dict[str, Model] = {}
    for model_id, table in document.get("models", {}).items():
        if table.get("disabled"):
            continue
        model = _model(model_id, table, providers)
        if simulators:
            model = _with_simulator(model, simulators)
        models[model_id] = model
    aliases: dict[str, str] = {}
    for provider in providers.values():
        aliases[provider.slug.lower()] = provider.slug
        aliases[provider.name.lower()] = provider.slug
    routing = document.get("routing", {})
    allow = frozenset(aliases.get(str(p).lower(), str(p)) for p in routing.get("allow", ()))
    deny = frozenset(aliases.get(str(p).lower(), str(p)) for p in routing.get("deny", ()))
    for slug in allow | deny:
        if slug not in providers:
            raise ConfigError(f"[routing]: unknown provider {slug!r}")
    sort = routing.get("sort")
    if sort not in (None, "price", "throughput", "latency"):
        raise ConfigError(f"[routing]: sort must be price, throughput or latency, not {sort!r}")
    return Catalog(providers=providers, models=models, provider_aliases=aliases, routing_allow=allow,
                   routing_deny=deny, routing_sort=sort)


def load(
    extra_paths: Iterable[Path], environ: Mapping[str, str], *, simulator_url: str | None = None
) -> Catalog:
    document = read_builtin()
    for path in extra_paths:
        document = merge(document, read_file(path))
    return build(document, environ, simulator_url=simulator_url)


def _provider(slug: str, table: Mapping[str, Any], environ: Mapping[str, str]) -> Provider:
    where = f"provider {slug!r}"
    wire_format = table.get("wire_format", DEFAULT)
    if wire_format not in WIRE_FORMATS:
        raise ConfigError(f"{where}: wire_format must be one of {', '.join(WIRE_FORMATS)}, not {wire_format!r}")
    prefix = f"CROSSROADS_PROVIDER_{env_name(slug)}_"
    base_url = environ.get(prefix + "BASE_URL") or table.get("base_url")
    if not base_url:
        raise ConfigError(f"{where}: no base_url (set it in the catalog or in {prefix}BASE_URL)")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{prefix}BASE_URL: {base_url!r} is not an http(s) URL")
    api_key_env = table.get("api_key_env")
    api_key = environ.get(prefix + "API_KEY") or (environ.get(api_key_env) if api_key_env else None)
    local = bool(table.get("local", False))
    # A local server is usable only once the user points Crossroads at it.
    enabled = not local or bool(environ.get(prefix + "BASE_URL")) or bool(table.get("enabled", False))
    policy = table.get("data_policy", {})
    return Provider(
        slug=slug,
        name=str(table.get("name", slug)),
        wire_format=wire_format,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        api_key_env=api_key_env,
        quirks=str(table.get("quirks", "generic")),
        local=local,
        enabled=enabled,
        headquarters=table.get("headquarters"),
        datacenters=tuple(table.get("datacenters", ())),
        privacy_policy_url=table.get("privacy_policy_url"),
        terms_of_service_url=table.get("terms_of_service_url"),
        status_page_url=table.get("status_page_url"),
        data_policy=DataPolicy(
            training=bool(policy.get("training", False)),
            retains_prompts=bool(policy.get("retains_prompts", True)),
            retention_days=policy.get("retention_days"),
        ),
        headers=tuple((str(k), str(v)) for k, v in table.get("headers", {}).items()),
    )


def _model(model_id: str, table: Mapping[str, Any], providers: Mapping[str, Provider]) -> Model:
    where = f"model {model_id!r}"
    if model_id.count("/") != 1:
        raise ConfigError(f"{where}: ids look like 'author/slug'")
    context_length = _positive_int(table.get("context_length"), f"{where}: context_length")
    inputs = tuple(table.get("input_modalities", ["text"]))
    outputs = tuple(table.get("output_modalities", ["text"]))
    if not set(inputs) <= MODALITIES_IN or not set(outputs) <= MODALITIES_OUT:
        raise ConfigError(f"{where}: unknown modality in {inputs} -> {outputs}")
    features = _features(table.get("features", {}), Features(), where)
    reasoning = None
    if "reasoning" in table:
        unknown = set(table["reasoning"]) - _REASONING_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown reasoning keys {sorted(unknown)}")
        raw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in table["reasoning"].items()}
        reasoning = Reasoning(**raw)
        features = Features(**{**_as_dict(features), "reasoning": True})
    endpoints = tuple(
        _endpoint(model_id, e, providers, features, context_length, frozenset(inputs))
        for e in table.get("endpoints", [])
        if not e.get("disabled")
    )
    tags = [e.tag for e in endpoints]
    if len(tags) != len(set(tags)):
        raise ConfigError(f"{where}: two endpoints share a tag; give one a distinct 'tag'")
    return Model(
        id=model_id,
        name=str(table.get("name", model_id)),
        created=int(table.get("created", 0)),
        description=str(table.get("description", "")),
        context_length=context_length,
        input_modalities=inputs,
        output_modalities=outputs,
        tokenizer=table.get("tokenizer"),
        instruct_type=table.get("instruct_type"),
        hugging_face_id=table.get("hugging_face_id"),
        knowledge_cutoff=table.get("knowledge_cutoff"),
        expiration_date=table.get("expiration_date"),
        features=features,
        reasoning=reasoning,
        endpoints=endpoints,
    )


def _endpoint(
    model_id: str,
    table: Mapping[str, Any],
    providers: Mapping[str, Provider],
    model_features: Features,
    model_context: int,
    model_inputs: frozenset[str],
) -> Endpoint:
    slug = str(table.get("provider"))
    where = f"model {model_id!r}, endpoint {table.get('tag') or slug!r}"
    if slug not in providers:
        raise ConfigError(f"{where}: unknown provider {slug!r}")
    quantization = table.get("quantization")
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"{where}: quantization {quantization!r} is not one of {sorted(QUANTIZATIONS)}")
    max_completion = table.get("max_completion_tokens")
    inputs = frozenset(table.get("input_modalities", model_inputs))
    if not inputs <= MODALITIES_IN:
        raise ConfigError(f"{where}: unknown input modality in {sorted(inputs)}")
    return Endpoint(
        model_id=model_id,
        provider=providers[slug],
        tag=str(table.get("tag") or slug),
        upstream_model=str(table.get("upstream_model") or model_id.split("/", 1)[1]),
        context_length=_positive_int(table.get("context_length", model_context), f"{where}: context_length"),
        max_completion_tokens=None if max_completion is None else _positive_int(
            max_completion, f"{where}: max_completion_tokens"),
        max_prompt_tokens=table.get("max_prompt_tokens"),
        quantization=quantization,
        pricing=_pricing(table.get("pricing"), where),
        features=_features(table.get("features", {}), model_features, where),
        input_modalities=inputs,
        supports_implicit_caching=bool(table.get("supports_implicit_caching", False)),
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
        features=Features(**{**_as_dict(model.features), "tools": True, "response_format": True,
                             "structured_outputs": True, "logprobs": True}),
        input_modalities=frozenset(model.input_modalities),
    )
    return Model(**{**_as_dict(model), "endpoints": (*model.endpoints, endpoint)})


def _pricing(table: Any, where: str) -> Pricing:
    if not isinstance(table, Mapping) or "prompt" not in table or "completion" not in table:
        raise ConfigError(f"{where}: pricing needs at least 'prompt' and 'completion'")
    unknown = set(table) - set(PRICE_KEYS) - {"discount"}
    if unknown:
        raise ConfigError(f"{where}: unknown price components {sorted(unknown)}")
    values: dict[str, Decimal] = {}
    for key, raw in table.items():
        try:
            value = Decimal(str(raw))
        except InvalidOperation as exc:
            raise ConfigError(f"{where}: pricing.{key} = {raw!r} is not a number") from exc
        if value < 0:
            raise ConfigError(f"{where}: pricing.{key} is negative")
        values[key] = value / _MILLION if key in TOKEN_PRICES else value
    return Pricing(**values)


def _features(table: Mapping[str, Any], base: Features, where: str) -> Features:
    unknown = set(table) - _FEATURE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown features {sorted(unknown)}")
    return Features(**{**_as_dict(base), **{k: bool(v) for k, v in table.items()}})


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where} must be a positive integer, not {value!r}")
    return value


def _as_dict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


__all__ = ["WireFormat", "build", "env_name", "load", "merge", "read_builtin"]
