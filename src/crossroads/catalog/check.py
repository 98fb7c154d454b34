"""`crossroads catalog check`: what an operator wants to know about a catalog beyond "it loads".

The loader already refuses what cannot work (an unknown key, a wrong type, an endpoint at an undefined
provider). This module reads a loaded catalog for what is legal but most likely a mistake, and for what
the operator still has to do:

* errors: a model no endpoint serves; an endpoint whose context is larger than its model's (the model
  advertises less than it has, or the endpoint's number is wrong); an output cap larger than the context;
* warnings: a hosted endpoint that charges nothing; two models sent to the same upstream id at one
  provider; a provider that serves no model;
* notes: models no configured provider serves (and which variable configures each provider).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from crossroads.catalog.loader import env_name
from crossroads.catalog.types import SIMULATOR_SLUG, Catalog, Endpoint

Level = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def check(catalog: Catalog) -> list[Finding]:
    """Every finding about `catalog`, errors first."""
    findings = [*_models(catalog), *_upstream_ids(catalog), *_providers(catalog)]
    order: dict[Level, int] = {"error": 0, "warning": 1, "note": 2}
    return sorted(findings, key=lambda f: order[f.level])


def _models(catalog: Catalog) -> list[Finding]:
    out = []
    for model in catalog.models.values():
        endpoints = [e for e in model.endpoints if not e.is_simulator]
        if not endpoints:
            out.append(Finding("error", f"{model.id}: no endpoint serves it"))
        for endpoint in endpoints:
            out.extend(_endpoint(model.context_length, "text" in model.output_modalities, endpoint))
    return out


def _endpoint(model_context: int, chat: bool, endpoint: Endpoint) -> list[Finding]:
    out = []
    where = endpoint.key.replace("|", " at ")
    if endpoint.context_length > model_context:
        out.append(Finding("error", f"{where}: context {endpoint.context_length} exceeds the model's {model_context}"))
    cap = endpoint.max_completion_tokens
    if cap is not None and cap > endpoint.context_length:
        out.append(Finding("error", f"{where}: max_completion_tokens {cap} exceeds its context "
                                    f"{endpoint.context_length}"))
    pricing = endpoint.pricing
    free = pricing.prompt == 0 or (chat and pricing.completion == 0)
    if free and not endpoint.provider.local and not pricing.request:
        out.append(Finding("warning", f"{where}: a hosted endpoint with a price of zero "
                                      f"(prompt {pricing.prompt}, completion {pricing.completion} per token)"))
    return out


def _upstream_ids(catalog: Catalog) -> list[Finding]:
    """Two catalog models sent to one upstream id at one provider: usually a copy-paste slip."""
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for model in catalog.models.values():
        for endpoint in model.endpoints:
            if not endpoint.is_simulator:
                users[endpoint.provider.slug, endpoint.upstream_model].add(model.id)
    return [Finding("warning", f"{slug}: upstream id {upstream!r} serves {len(ids)} models: {', '.join(sorted(ids))}")
            for (slug, upstream), ids in sorted(users.items()) if len(ids) > 1]


def _providers(catalog: Catalog) -> list[Finding]:
    out = []
    serving: dict[str, int] = defaultdict(int)
    for model in catalog.models.values():
        for endpoint in model.endpoints:
            serving[endpoint.provider.slug] += 1
    for provider in catalog.providers.values():
        if not serving[provider.slug] and provider.slug != SIMULATOR_SLUG:
            out.append(Finding("warning", f"provider {provider.slug}: serves no model"))
    unserved = [m.id for m in catalog.models.values()
                if not any(e.provider.configured and not e.is_simulator for e in m.endpoints)]
    if unserved:
        out.append(Finding("note", f"{len(unserved)} of {len(catalog.models)} models have no configured provider: "
                                   + ", ".join(unserved[:8]) + (" ..." if len(unserved) > 8 else "")))
    unconfigured = sorted((p for p in catalog.providers.values() if not p.configured and p.slug != SIMULATOR_SLUG),
                          key=lambda p: p.slug)
    for provider in unconfigured:
        prefix = f"CROSSROADS_PROVIDER_{env_name(provider.slug)}_"
        how = f"set {prefix}BASE_URL" if provider.local else f"set {provider.api_key_env or prefix + 'API_KEY'}"
        out.append(Finding("note", f"provider {provider.slug} is not configured ({how})"))
    return out


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


__all__ = ["Finding", "check", "has_errors"]
