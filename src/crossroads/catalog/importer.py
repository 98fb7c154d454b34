"""Turn OpenRouter's public model list (and, optionally, per-model endpoint lists) into a catalog file.

`crossroads catalog import` and the run-time refresh (`refresh.py`) both call `import_models`. The result is
a catalog document in the format of `loader.py`'s docstring, meant to be merged over the built-in catalog
with `CROSSROADS_CATALOG`:

* every model of the list, with its context, modalities, tokenizer, features (from its supported
  parameters) and reasoning settings;
* its endpoints: from its endpoint list when one is given (per-provider prices, context, output cap,
  quantization), otherwise one endpoint at the model author's own API, priced as the model list prices it;
* only providers the catalog already defines. An endpoint at any other provider is left out and reported,
  never guessed; a model then left without any endpoint is left out too (and reported), unless the catalog
  already has it, in which case it keeps the catalog's endpoints.

OpenRouter publishes prices as strings of USD per token; the catalog's are USD per million tokens. The
conversion is exact (`Decimal`): "0.0000025" becomes "2.5".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, get_args

import tomli_w

from crossroads.catalog import openrouter
from crossroads.catalog.document import parse
from crossroads.catalog.types import TOKEN_PRICES, Catalog, InputModality, OutputModality, Quantization

#: A model author → the provider slug of the author's own API, for models imported without an endpoint list.
#: Used only when the catalog defines that provider.
FIRST_PARTY: Final[Mapping[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google-ai-studio",
    "mistralai": "mistral",
    "deepseek": "deepseek",
    "x-ai": "xai",
    "perplexity": "perplexity",
    "moonshotai": "moonshotai",
    "cohere": "cohere",
    "qwen": "alibaba",
    "z-ai": "z-ai",
    "minimax": "minimax",
    "ai21": "ai21",
    "inception": "inception",
    "voyage": "voyage",
}

#: How a provider spells a model's id when the catalog does not know it yet: (OpenRouter's character, the
#: provider's). Anthropic's aliases write versions with dashes (`claude-opus-4-1` for `claude-opus-4.1`).
SPELLING: Final[Mapping[str, tuple[str, str]]] = {
    "anthropic": (".", "-"),
}

#: Parameters (OpenRouter's `supported_parameters`) → the `Features` field each one turns on.
_FEATURES: Final[Mapping[str, str]] = {
    "tools": "tools",
    "tool_choice": "tool_choice",
    "response_format": "response_format",
    "structured_outputs": "structured_outputs",
    "logprobs": "logprobs",
    "seed": "seed",
}
_REASONING_PARAMETERS: Final = frozenset({"reasoning", "include_reasoning", "reasoning_effort"})
_INPUTS: Final = frozenset(get_args(InputModality))
_OUTPUTS: Final = frozenset(get_args(OutputModality))
_QUANTIZATIONS: Final = frozenset(get_args(Quantization))
_UNIT_PRICES: Final = ("request", "image", "web_search")
_MILLION: Final = Decimal(1_000_000)


@dataclass(slots=True)
class ImportReport:
    """What an import left out or could not map, for the operator to read."""

    models: int = 0
    endpoints: int = 0
    #: An OpenRouter provider name the catalog does not define → the models it serves there.
    unknown_providers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: Model id → why it was not imported.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Models imported without an endpoint of their own: they keep the endpoints the catalog already has.
    without_endpoints: list[str] = field(default_factory=list)
    #: Price components the catalog has no field for (e.g. `audio_output`) → how many prices dropped them.
    dropped_prices: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Endpoints whose upstream id neither the endpoint list nor the catalog gave: model id → provider slug.
    guessed_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: Modalities the catalog does not know → how many models listed them.
    dropped_modalities: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def lines(self) -> list[str]:
        """The report as lines of text."""
        out = [f"imported {self.models} models with {self.endpoints} endpoints"]
        for name, models in sorted(self.unknown_providers.items()):
            out.append(f"unknown provider {name!r} (not in the catalog; left out): {len(models)} endpoints, "
                       f"e.g. {', '.join(models[:3])}")
        for model_id, reason in sorted(self.skipped.items()):
            out.append(f"skipped {model_id}: {reason}")
        if self.without_endpoints:
            out.append(f"{len(self.without_endpoints)} models keep only the catalog's endpoints (none listed at a "
                       "known provider): "
                       + ", ".join(self.without_endpoints[:10]) + (" ..." if len(self.without_endpoints) > 10 else ""))
        if self.guessed_ids:
            guessed = [f"{model_id} at {', '.join(slugs)}" for model_id, slugs in sorted(self.guessed_ids.items())]
            out.append(f"{len(guessed)} models have endpoints new to the catalog, with upstream ids spelled from "
                       "the OpenRouter id (check them): " + "; ".join(guessed[:10])
                       + (" ..." if len(guessed) > 10 else ""))
        for key, count in sorted(self.dropped_prices.items()):
            out.append(f"price component {key!r} has no catalog field; dropped from {count} prices")
        for modality, count in sorted(self.dropped_modalities.items()):
            out.append(f"modality {modality!r} is not one the catalog knows; dropped from {count} models")
        return out


def per_million(price: str) -> Decimal:
    """OpenRouter's USD per token → the catalog's USD per million tokens, exactly."""
    value = Decimal(price) * _MILLION
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def import_models(
    models: openrouter.ModelList,
    endpoint_lists: Iterable[openrouter.EndpointList],
    known: Catalog,
    *,
    source: str = "import",
) -> tuple[dict[str, Any], ImportReport]:
    """The catalog document (`{"models": {...}}`, ready for `tomli_w`) for `models`, with the endpoints of
    `endpoint_lists` where given, mapped to the providers of `known`, and the report of what was left out.
    The document is checked like any catalog file before it is returned."""
    report = ImportReport()
    endpoints_of = {each.data.id: each.data.endpoints for each in endpoint_lists}
    tables: dict[str, Any] = {}
    for model in models.data:
        reason = _unimportable(model)
        if reason:
            report.skipped[model.id] = reason
            continue
        table = _model(model, report)
        listed = endpoints_of.get(model.id)
        if listed is None:
            endpoints = _first_party(model, known, table, report)
        else:
            endpoints = [e for e in (_endpoint(model.id, each, known, table, report) for each in listed) if e]
        if endpoints:
            table["endpoints"] = endpoints
            # A model's context is the largest any endpoint offers (OpenRouter's figure is its top provider's).
            widest = max(e.get("context_length", table["context_length"]) for e in endpoints)
            if widest > table["context_length"]:
                for endpoint in endpoints:
                    endpoint.setdefault("context_length", table["context_length"])
                table["context_length"] = widest
        elif model.id in known.models:
            report.without_endpoints.append(model.id)
        else:
            report.skipped[model.id] = "no provider the catalog knows serves it"
            continue
        report.models += 1
        report.endpoints += len(endpoints)
        tables[model.id] = table
    document: dict[str, Any] = {"models": tables}
    parse(document, source)
    return document, report


def _unimportable(model: openrouter.Model) -> str | None:
    if model.id.count("/") != 1:
        return "not an 'author/slug' id"
    if ":" in model.id:
        return "a variant; Crossroads serves variants as the base model with a ':suffix'"
    if not model.context_length or model.context_length <= 0:
        return "no context length"
    try:
        if Decimal(model.pricing.prompt) < 0 or Decimal(model.pricing.completion) < 0:
            return "a router with variable prices"
    except InvalidOperation:
        return f"prices {model.pricing.prompt!r}/{model.pricing.completion!r} are not numbers"
    return None


def _model(model: openrouter.Model, report: ImportReport) -> dict[str, Any]:
    arch = model.architecture
    table: dict[str, Any] = {"name": model.name}
    if model.created > 0:
        table["created"] = model.created
    if model.description:
        table["description"] = model.description
    table["context_length"] = model.context_length
    table["input_modalities"] = _known(arch.input_modalities or ["text"], _INPUTS, report) or ["text"]
    table["output_modalities"] = _known(arch.output_modalities or ["text"], _OUTPUTS, report) or ["text"]
    for key in ("tokenizer", "instruct_type"):
        value = getattr(arch, key)
        if value and value != "none":
            table[key] = value
    for key in ("hugging_face_id", "knowledge_cutoff", "expiration_date"):
        value = getattr(model, key)
        if value:
            table[key] = value
    table["features"] = _features(model.supported_parameters)
    reasoning = _reasoning(model)
    if reasoning is not None:
        table["reasoning"] = reasoning
    return table


def _known(values: Iterable[str], known: frozenset[str], report: ImportReport) -> list[str]:
    kept = []
    for value in values:
        if value in known:
            kept.append(value)
        else:
            report.dropped_modalities[value] += 1
    return kept


def _features(parameters: Iterable[str]) -> dict[str, bool]:
    given = set(parameters)
    return {name: parameter in given for parameter, name in _FEATURES.items()}


def _reasoning(model: openrouter.Model) -> dict[str, Any] | None:
    if model.reasoning is None:
        if _REASONING_PARAMETERS.isdisjoint(model.supported_parameters):
            return None
        return {}
    given = {key: getattr(model.reasoning, key) for key in
             ("supported_efforts", "default_effort", "default_enabled", "supports_max_tokens", "mandatory")}
    return {key: value for key, value in given.items() if value is not None}


def _first_party(
    model: openrouter.Model, known: Catalog, table: Mapping[str, Any], report: ImportReport
) -> list[dict[str, Any]]:
    """Without an endpoint list: the author's own API, when the catalog knows it, priced as the list says."""
    slug = FIRST_PARTY.get(model.id.split("/", 1)[0])
    if slug is None or slug not in known.providers:
        return []
    endpoint: dict[str, Any] = {"provider": slug,
                                "upstream_model": _upstream(model.id, slug, slug, None, known, report)}
    top = model.top_provider
    if top.context_length and top.context_length != table["context_length"]:
        endpoint["context_length"] = top.context_length
    if top.max_completion_tokens and top.max_completion_tokens <= (top.context_length or table["context_length"]):
        endpoint["max_completion_tokens"] = top.max_completion_tokens
    endpoint["pricing"] = _pricing(model.pricing, report)
    return [endpoint]


def _endpoint(
    model_id: str, listed: openrouter.Endpoint, known: Catalog, table: Mapping[str, Any], report: ImportReport
) -> dict[str, Any] | None:
    slug = _provider_slug(listed, known)
    if slug is None:
        report.unknown_providers[listed.provider_name].append(model_id)
        return None
    # OpenRouter's tag is `<provider>` or `<provider>/<variant>` (e.g. `deepinfra/turbo`); keep the variant.
    _, _, variant = listed.tag.partition("/")
    tag = f"{slug}/{variant}" if variant else slug
    endpoint: dict[str, Any] = {"provider": slug}
    if tag != slug:
        endpoint["tag"] = tag
    endpoint["upstream_model"] = _upstream(model_id, slug, tag, listed.provider_model_id, known, report)
    quantization = listed.quantization if listed.quantization in _QUANTIZATIONS else "unknown"
    endpoint["quantization"] = quantization
    if listed.context_length > 0 and listed.context_length != table["context_length"]:
        endpoint["context_length"] = listed.context_length
    for key in ("max_completion_tokens", "max_prompt_tokens"):
        value = getattr(listed, key)
        if value and value > 0:
            endpoint[key] = value
    endpoint["pricing"] = _pricing(listed.pricing, report)
    features = _features(listed.supported_parameters)
    differs = {key: value for key, value in features.items() if table["features"].get(key) != value}
    if differs:
        endpoint["features"] = differs
    if listed.supports_implicit_caching:
        endpoint["supports_implicit_caching"] = True
    return endpoint


def _provider_slug(listed: openrouter.Endpoint, known: Catalog) -> str | None:
    """The catalog's slug for an endpoint's provider: OpenRouter's tag names its provider slug, which the
    catalog's slugs follow; failing that, the display name (or slug) as the catalog knows it."""
    prefix = listed.tag.partition("/")[0]
    if prefix in known.providers:
        return prefix
    return known.provider_slug(listed.provider_name) or known.provider_slug(prefix)


def _upstream(model_id: str, slug: str, tag: str, given: str | None, known: Catalog, report: ImportReport) -> str:
    """The provider's own id for the model: as the endpoint list gives it, else as the catalog already has it
    for that endpoint (or any endpoint of that provider), else the model id's slug in the provider's spelling
    (reported, for the operator to check)."""
    if given:
        return given
    model = known.models.get(model_id)
    if model is not None:
        same = [e for e in model.endpoints if e.provider.slug == slug]
        for endpoint in sorted(same, key=lambda e: e.tag != tag):
            return endpoint.upstream_model
    report.guessed_ids[model_id].append(slug)
    old, new = SPELLING.get(slug, ("", ""))
    name = model_id.split("/", 1)[1]
    return name.replace(old, new) if old else name


def _pricing(pricing: openrouter.Pricing, report: ImportReport) -> dict[str, str]:
    out = {"prompt": _plain(per_million(pricing.prompt)), "completion": _plain(per_million(pricing.completion))}
    for key in TOKEN_PRICES[2:]:
        value = getattr(pricing, key)
        if value is not None and Decimal(value) > 0:
            out[key] = _plain(per_million(value))
    for key in _UNIT_PRICES:
        value = getattr(pricing, key)
        if value is not None and Decimal(value) > 0:
            out[key] = _plain(Decimal(value))
    if pricing.discount:
        out["discount"] = _plain(Decimal(str(pricing.discount)))
    for key in ("audio_output", "image_output", "input_audio_cache"):
        value = getattr(pricing, key)
        if value is not None and Decimal(value) > 0:
            report.dropped_prices[key] += 1
    return out


def to_toml(document: Mapping[str, Any], source: str, when: str) -> str:
    """The catalog file for an imported document: a header naming its source and date, then the tables."""
    header = (f"# Imported from {source} on {when} by `crossroads catalog import`.\n"
              "# Prices are USD per million tokens (request, image, web_search: per unit); see the catalog format\n"
              "# in crossroads/catalog/loader.py. Merge it over the built-in catalog with CROSSROADS_CATALOG.\n\n")
    return header + tomli_w.dumps(document)


def _plain(value: Decimal) -> str:
    """A decimal as TOML-friendly plain text, never in scientific notation."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


__all__ = ["FIRST_PARTY", "SPELLING", "ImportReport", "import_models", "per_million", "to_toml"]
