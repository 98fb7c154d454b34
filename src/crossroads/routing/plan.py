"""Which endpoints serve a request, in which order: OpenRouter's provider and model routing.

For each model of the request (`model`, then the `models` fallbacks), candidates are the model's endpoints
that pass every hard filter — configured provider, adapter present, account and request provider lists,
data policy, quantization, `max_price`, context length, output cap, input modalities, `require_parameters`
— plus the soft preference for endpoints that take `tools` / `response_format` when some do.

Order within a model, by OpenRouter's published default: endpoints without a significant outage in the last
30 seconds first; the first of them picked at random with weight 1/price² (price = the blended prompt and
completion price, see `Pricing.blended`), the rest by ascending price; recently failing endpoints last.
`provider.order` puts the named providers first (in order); `provider.sort` (or the `:nitro` / `:floor`
variants) sorts deterministically and disables load balancing. Endpoints that miss a
`preferred_min_throughput` / `preferred_max_latency` threshold move to the end of their group. Last, sticky
routing (`routing/sticky.py`): the endpoint that last served the request's conversation goes first while it
is healthy, unless `provider.order` or `provider.sort` decide the order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

from crossroads.catalog.types import SIMULATOR_SLUG, Catalog, Endpoint, Model
from crossroads.errors import ContextLengthExceeded, CrossroadsError, InvalidParameter, NoEndpoints, UnknownModel
from crossroads.providers.base import Adapter
from crossroads.routing.health import Health
from crossroads.routing.sticky import Sticky, conversation_of
from crossroads.schema.request import ChatRequest, ProviderPreferences
from crossroads.schema.usage import Usage

_MILLION: Final = Decimal(1_000_000)
#: Dynamic variants: a suffix on any model id that changes how its endpoints are sorted.
DYNAMIC_VARIANTS: Final[Mapping[str, str]] = {"nitro": "throughput", "floor": "price"}


@dataclass(frozen=True, slots=True)
class Policy:
    """Operator-wide routing settings (from the catalog's `[routing]` table)."""

    allow: frozenset[str] = frozenset()  # provider slugs; empty = all
    deny: frozenset[str] = frozenset()
    sort: str | None = None
    #: Route to the simulator without being asked (no real provider configured, or forced on).
    simulator_default: bool = True


class Fence(Protocol):
    """Limits on the key a request comes with (its guardrails): endpoints it may not use."""

    def refuses(self, model: Model, endpoint: Endpoint) -> str | None:
        """The name of what keeps this endpoint of this model from the key, or None."""
        ...

    def refusal(self, names: set[str], models: tuple[str, ...]) -> CrossroadsError:
        """The error when only the fence (`names`) left no endpoint."""
        ...


@dataclass(slots=True)
class Route:
    """The endpoints to try, in order, grouped by model."""

    groups: list[tuple[Model, list[Endpoint]]] = field(default_factory=list)
    allow_fallbacks: bool = True
    #: The request's conversation, when its first model's endpoint is chosen stickily (`routing/sticky.py`),
    #: and whether the request named it (else it is known by its prefix).
    conversation: str | None = None
    named: bool = False

    def endpoints(self) -> Iterator[Endpoint]:
        for _, endpoints in self.groups:
            yield from endpoints


class Planner:
    def __init__(self, catalog: Catalog, adapters: Mapping[str, Adapter], health: Health, policy: Policy,
                 rng: random.Random | None = None, sticky: Sticky | None = None) -> None:
        self.catalog = catalog
        self.adapters = adapters
        self.health = health
        self.policy = policy
        self._rng = rng or random.Random()
        self.sticky = sticky or Sticky()

    # -- model resolution ----------------------------------------------------------------------------------

    def resolve(self, slug: str) -> tuple[Model, str | None]:
        """A model id, possibly with a variant suffix → (model, dynamic sort or None)."""
        model = self.catalog.models.get(slug)
        if model is not None:
            return model, None
        base, sep, variant = slug.rpartition(":")
        if sep and base in self.catalog.models:
            if variant in DYNAMIC_VARIANTS:
                return self.catalog.models[base], DYNAMIC_VARIANTS[variant]
            raise UnknownModel(slug, f"{slug}: unknown variant ':{variant}' (this gateway offers :nitro, "
                                     ":floor and the static variants listed in /models)")
        raise UnknownModel(slug)

    # -- planning ------------------------------------------------------------------------------------------

    def plan(self, request: ChatRequest, fence: Fence | None = None, output: str = "text",
             account: str | None = None) -> Route:
        """The route for a request whose API answers with `output` (chat: "text"; see `_SERVED_BY` for the
        rest): a model that does not produce it is a 400 naming the API that serves it. `fence` keeps the
        endpoints a key's guardrails exclude out of it. With `account` (the API key's hash), the endpoint that
        last served the request's conversation for it goes first while it is healthy (sticky routing)."""
        prefs = request.provider
        route = Route(allow_fallbacks=prefs.allow_fallbacks)
        reasons: dict[str, set[str]] = {}
        fenced: set[str] = set()
        resolved = [self.resolve(slug) for slug in request.models]  # unknown models fail before anything runs
        for model, _ in resolved:
            if output not in model.output_modalities:
                raise _wrong_api(model, output)
        for model, variant_sort in resolved:
            endpoints = self._candidates(model, request, prefs, reasons)
            if fence is not None:
                kept = []
                for endpoint in endpoints:
                    name = fence.refuses(model, endpoint)
                    if name is None:
                        kept.append(endpoint)
                    else:
                        fenced.add(name)
                endpoints = kept
            if endpoints:
                route.groups.append((model, self._order(endpoints, prefs, variant_sort)))
        if not route.groups:
            if fence is not None and fenced:
                raise fence.refusal(fenced, request.models)
            raise _no_endpoints(request, reasons)
        if not route.allow_fallbacks:
            model, endpoints = route.groups[0]
            keep = len(_ordered_by(endpoints, prefs.order, self.catalog)) or 1
            route.groups = [(model, endpoints[:keep])]
        elif account is not None and len(route.groups[0][1]) > 1 and not prefs.order and not prefs.sort:
            self._stick(route, request, account)
        return route

    def _stick(self, route: Route, request: ChatRequest, account: str) -> None:
        route.conversation, route.named = conversation_of(request, account)
        stuck = self.sticky.get(route.conversation)
        if stuck is None:
            return
        endpoints = route.groups[0][1]
        for index, endpoint in enumerate(endpoints):
            if endpoint.key == stuck:
                if index and not self.health.recently_failing(stuck):
                    endpoints.insert(0, endpoints.pop(index))
                return

    def remember(self, route: Route, endpoint: Endpoint | None, usage: Usage | None) -> None:
        """The endpoint that served a request: its conversation goes there next time (`_stick`) — when the
        request named its conversation, or the provider's prompt cache hit (`usage`'s cached tokens)."""
        if route.conversation is not None and endpoint is not None and \
                (route.named or (usage is not None and usage.cached_tokens)):
            self.sticky.remember(route.conversation, endpoint.key)

    def _candidates(self, model: Model, request: ChatRequest, prefs: ProviderPreferences,
                    reasons: dict[str, set[str]]) -> list[Endpoint]:
        only = self._slugs(prefs.only)
        ignore = self._slugs(prefs.ignore) | self.policy.deny
        asked = only | self._slugs(prefs.order)
        quantizations = frozenset(prefs.quantizations)
        max_price = dict(prefs.max_price)
        data_deny = prefs.data_collection == "deny"
        zdr = prefs.zdr
        require = prefs.require_parameters
        wanted = request.required
        prompt = request.prompt_tokens_estimate()
        # Plugins that make a request fit an endpoint (`plugins.fit`): a prompt over its context is
        # compressed, PDFs become text where it cannot read them.
        compresses = bool(request.plugins) and request.plugin("context-compression") is not None
        parses = bool(request.plugins) and _parses_files(request)
        out: list[Endpoint] = []

        def drop(reason: str) -> None:
            reasons.setdefault(reason, set()).add(model.id)

        for endpoint in model.endpoints:
            provider = endpoint.provider
            adapter = self.adapters.get(provider.wire_format)
            if endpoint.is_simulator:
                if not self.policy.simulator_default and not _matches(endpoint, asked):
                    continue
            elif not provider.configured:
                drop("unconfigured")
                continue
            if adapter is None:
                drop("no_adapter")
                continue
            if self.policy.allow and provider.slug not in self.policy.allow and not endpoint.is_simulator:
                drop("allowed_providers")
                continue
            if only and not _matches(endpoint, only):
                drop("allowed_providers")
                continue
            if ignore and _matches(endpoint, ignore):
                drop("ignored_providers")
                continue
            if quantizations and (endpoint.quantization or "unknown") not in _expand_quantizations(quantizations):
                drop("quantization")
                continue
            if data_deny and provider.data_policy.training:
                drop("data_policy:training")
                continue
            if zdr and not provider.data_policy.zdr:
                drop("data_policy:zdr")
                continue
            if max_price and not _within_price(endpoint, max_price):
                drop("max_price")
                continue
            output = request.max_output or 0
            if endpoint.max_completion_tokens is not None and output > endpoint.max_completion_tokens:
                drop("max_tokens")
                continue
            if prompt + output > endpoint.context_length and prompt > 64 and not compresses:
                drop("context_length")
                continue
            if (request.has_images and "image" not in endpoint.input_modalities) or \
                    (request.has_files and not parses and "file" not in endpoint.input_modalities and
                     "image" not in endpoint.input_modalities) or \
                    (request.has_audio and "audio" not in endpoint.input_modalities):
                drop("modality")
                continue
            if require and not wanted <= adapter.supported_parameters(endpoint):
                drop("require_parameters")
                continue
            out.append(endpoint)
        # Soft preference (OpenRouter): when some endpoints take tools / response_format / a native web
        # search, use only those.
        for param in ("tools", "response_format", "web_search_options"):
            if param in request.params and out:
                able = [e for e in out if param in self.adapters[e.provider.wire_format].supported_parameters(e)]
                if able:
                    out = able
        return out

    def _order(self, endpoints: list[Endpoint], prefs: ProviderPreferences, variant_sort: str | None) \
            -> list[Endpoint]:
        sort = prefs.sort or variant_sort or self.policy.sort
        first = _ordered_by(endpoints, prefs.order, self.catalog)
        rest = [e for e in endpoints if e not in first]
        rest = self._sorted(rest, sort) if sort else self._balanced(rest)
        ordered = first + rest
        soft = [e for e in ordered if not self._meets_preferences(e, prefs)]
        if soft:
            ordered = [e for e in ordered if e not in soft] + soft
        return ordered

    def _balanced(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """OpenRouter's default: a 1/price² weighted pick among stable endpoints, then the other stable ones
        by price, then the recently failing ones by price."""
        if len(endpoints) < 2:
            return endpoints
        stable = sorted((e for e in endpoints if not self.health.recently_failing(e.key)),
                        key=lambda e: e.pricing.rank)
        failing = sorted((e for e in endpoints if self.health.recently_failing(e.key)),
                         key=lambda e: e.pricing.rank)
        if len(stable) > 1:
            pick = self._weighted_pick(stable)
            stable.remove(pick)
            stable.insert(0, pick)
        return stable + failing

    def _weighted_pick(self, endpoints: Sequence[Endpoint]) -> Endpoint:
        prices = [e.pricing.rank for e in endpoints]
        if any(p <= 0 for p in prices):
            # Free endpoints are infinitely preferred; share among them evenly.
            free = [e for e, p in zip(endpoints, prices, strict=True) if p <= 0]
            return free[self._rng.randrange(len(free))]
        weights = [1.0 / (p * p) for p in prices]
        return self._rng.choices(list(endpoints), weights=weights, k=1)[0]

    def _sorted(self, endpoints: list[Endpoint], by: str) -> list[Endpoint]:
        failing = self.health.recently_failing
        if by == "price":
            return sorted(endpoints, key=lambda e: (failing(e.key), e.pricing.rank))
        if by == "throughput":
            def throughput(e: Endpoint) -> tuple[bool, float]:
                value = self.health.percentile(e.key, "throughput", 0.5)
                return failing(e.key), -(value if value is not None else -1.0)
            return sorted(endpoints, key=throughput)
        if by == "latency":
            def latency(e: Endpoint) -> tuple[bool, float]:
                value = self.health.percentile(e.key, "ttft", 0.5)
                return failing(e.key), value if value is not None else float("inf")
            return sorted(endpoints, key=latency)
        return self._balanced(endpoints)  # "exacto": no tool-quality data here; fall back to the default

    def _meets_preferences(self, endpoint: Endpoint, prefs: ProviderPreferences) -> bool:
        for cutoffs, metric, better in ((prefs.preferred_min_throughput, "throughput", 1),
                                        (prefs.preferred_max_latency, "ttft", -1)):
            for percentile, limit in cutoffs:
                value = self.health.percentile(endpoint.key, metric, percentile)
                if value is None:
                    continue  # no data: do not penalise
                if (better > 0 and value < limit) or (better < 0 and value > limit):
                    return False
        return True

    def _slugs(self, names: Iterable[str] | None) -> frozenset[str]:
        out = set()
        for name in names or ():
            base, _, variant = name.partition("/")
            slug = self.catalog.provider_slug(base) or base.lower()
            out.add(f"{slug}/{variant}" if variant else slug)
        return frozenset(out)


def _parses_files(request: ChatRequest) -> bool:
    """Whether the `file-parser` plugin turns the request's PDFs into text for endpoints without file input."""
    parser = request.plugin("file-parser")
    return parser is not None and (parser.options.get("pdf") or {}).get("engine") != "native"


def _matches(endpoint: Endpoint, slugs: frozenset[str]) -> bool:
    """A base slug matches every endpoint of the provider; `slug/variant` matches only that tag."""
    return endpoint.provider.slug in slugs or endpoint.tag in slugs


def _ordered_by(endpoints: Sequence[Endpoint], order: Sequence[str], catalog: Catalog) -> list[Endpoint]:
    out: list[Endpoint] = []
    for name in order:
        base, _, variant = name.partition("/")
        slug = catalog.provider_slug(base) or base.lower()
        for endpoint in sorted(endpoints, key=lambda e: e.pricing.rank):
            if endpoint in out:
                continue
            if (variant and endpoint.tag == f"{slug}/{variant}") or (not variant and endpoint.provider.slug == slug):
                out.append(endpoint)
    return out


def _expand_quantizations(wanted: frozenset[str]) -> frozenset[str]:
    """`fp4` includes mxfp4 and nvfp4, `fp8` includes mxfp8 (OpenRouter's quantization levels)."""
    out = set(wanted)
    if "fp4" in wanted:
        out |= {"mxfp4", "nvfp4"}
    if "fp8" in wanted:
        out.add("mxfp8")
    return frozenset(out)


def _within_price(endpoint: Endpoint, limits: Mapping[str, Decimal]) -> bool:
    pricing = endpoint.pricing
    for key, per_million in (("prompt", pricing.prompt), ("completion", pricing.completion)):
        if key in limits and per_million * _MILLION > limits[key]:
            return False
    for key, unit in (("request", pricing.request), ("image", pricing.image), ("audio", pricing.audio)):
        if key in limits and unit is not None:
            value = unit * _MILLION if key == "audio" else unit
            if value > limits[key]:
                return False
    return True


_REASON_TEXT: Final = {
    "unconfigured": "its providers are not configured (no API key or base URL)",
    "no_adapter": "no adapter for its providers' API format is installed",
    "allowed_providers": "no allowed provider serves it",
    "ignored_providers": "every provider serving it is ignored",
    "quantization": "no endpoint has the requested quantization",
    "data_policy:training": "every endpoint may train on prompts (data_collection: deny)",
    "data_policy:zdr": "no endpoint has zero data retention (zdr: true)",
    "max_price": "every endpoint costs more than max_price",
    "max_tokens": "the requested max_tokens exceeds every endpoint's maximum output",
    "context_length": "the prompt and requested output exceed every endpoint's context length",
    "modality": "no endpoint accepts the request's input types (images, files or audio)",
    "require_parameters": "no endpoint supports every parameter of the request (require_parameters)",
}


#: The API that serves each output modality a chat model lacks.
_SERVED_BY: Final[Mapping[str, str]] = {"embeddings": "/api/v1/embeddings", "rerank": "/api/v1/rerank"}


def _wrong_api(model: Model, output: str) -> InvalidParameter:
    kinds = [kind for kind in model.output_modalities if kind in _SERVED_BY]
    if output == "text" and kinds:
        return InvalidParameter("model", f"{model.id} is {'an' if kinds[0][0] in 'aeiou' else 'a'} {kinds[0]} "
                                         f"model: send it to {_SERVED_BY[kinds[0]]}")
    listed = " (see /api/v1/embeddings/models)" if output == "embeddings" else ""
    return InvalidParameter("model", f"{model.id} is not {'an' if output[0] in 'aeiou' else 'a'} {output} "
                                     f"model{listed}")


def _no_endpoints(request: ChatRequest, reasons: Mapping[str, set[str]]) -> NoEndpoints | ContextLengthExceeded:
    models = ", ".join(request.models)
    if set(reasons) == {"context_length"}:
        # OpenRouter's answer to a prompt no endpoint can hold: a 400 that suggests compression.
        return ContextLengthExceeded(
            f"The prompt (about {request.prompt_tokens_estimate()} tokens) and the requested output "
            f"({request.max_output or 0} tokens) exceed the maximum context length of every endpoint of {models}. "
            "Shorten the messages, or use the \"context-compression\" plugin (or the \"middle-out\" transform) "
            "to compress the prompt automatically.",
            metadata={"availability": {"code": "constraint_filtered", "retryable": False,
                                       "requested_models": list(request.models),
                                       "excluded_by": ["context_length"]}})
    if not reasons:
        return NoEndpoints(f"No endpoints found for {models}.",
                           metadata={"availability": {"code": "no_endpoints", "retryable": False,
                                                      "requested_models": list(request.models)}})
    constrained = [r for r in reasons if r not in ("unconfigured", "no_adapter")]
    # What the request asked first: it is what the caller can change. Endpoints out of reach (no key, no
    # adapter) are then "the other" providers, not all of them.
    unreachable = [_REASON_TEXT[r] for r in reasons if r not in constrained]
    if constrained:
        unreachable = [reason.replace("its providers", "its other providers") for reason in unreachable]
    text = "; ".join([_REASON_TEXT.get(r, r) for r in constrained] + unreachable)
    availability: dict[str, Any] = {
        "code": "constraint_filtered" if constrained else "no_endpoints",
        "retryable": False,
        "requested_models": list(request.models),
    }
    if constrained:
        availability["excluded_by"] = sorted(constrained)
    return NoEndpoints(f"No endpoints found that can serve {models}: {text}.",
                       metadata={"availability": availability})


def simulator_default(catalog: Catalog, mode: str) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    return not any(p.configured for p in catalog.providers.values() if p.slug != SIMULATOR_SLUG)


__all__ = ["DYNAMIC_VARIANTS", "Fence", "Planner", "Policy", "Route", "simulator_default"]
