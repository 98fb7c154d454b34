"""A guardrail's policy: the fields of OpenRouter's `Guardrail` (spec: `CreateGuardrailRequest`,
`UpdateGuardrailRequest`), checked by one declarative table, and compiled once into what requests are
checked against.

    allowed_models / ignored_models          model ids (`author/slug`; `*` wildcards, e.g. `anthropic/*`)
    allowed_providers / ignored_providers    provider slugs or names
    limit_usd + reset_interval               spend of the guardrail's keys together, per UTC day/week/month
    enforce_zdr (and _openai, _anthropic,    only endpoints with zero data retention, for that author's
      _google, _xai, _other)                   models (the deprecated `enforce_zdr` fills the ones not given)
    content_filters                          custom regexes: `block` refuses, `redact` replaces, `flag` detects
    content_filter_builtins                  email, phone, ssn, credit-card, ip-address and
                                             regex-prompt-injection, as regexes

`person-name` and `address` need a named-entity model rather than a regex; Crossroads refuses them (400)
rather than accept a filter it would not apply. The `enable_*_model_training` / `publication` flags are
stored and shown; the catalog's data policies are enforced through `enforce_zdr` and the request's own
`provider.data_collection`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Final

from crossroads.catalog.authors import ZDR_GROUPS, zdr_group
from crossroads.errors import InvalidParameter
from crossroads.schema.fields import Check, Enum, ListOf, Number, Obj, String, boolean
from crossroads.storage.base import GuardrailRecord

_NAMES = ListOf(String(min_length=1, max_length=256), min_items=1, max_items=1000)
_ACTION = Enum("redact", "block", "flag")
_INTERVAL = Enum("daily", "weekly", "monthly")

#: The builtin filters that are regexes, with their redaction placeholders.
BUILTINS: Final[dict[str, tuple[str, re.Pattern[str]]]] = {
    "email": ("[EMAIL]", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    "phone": ("[PHONE]", re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}"
                                    r"(?!\w)")),
    "ssn": ("[SSN]", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    "credit-card": ("[CREDIT_CARD]", re.compile(r"(?<!\d)\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?!\d)")),
    "ip-address": ("[IP_ADDRESS]", re.compile(
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")),
    "regex-prompt-injection": ("[PROMPT_INJECTION]", re.compile(
        r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
        r"(?:previous|prior|above|earlier|preceding|system)\s+(?:instructions|prompts?|rules|directions|messages)"
        r"|\byou\s+are\s+now\s+(?:in\s+)?(?:DAN|developer\s+mode|jailbroken)\b"
        r"|\b(?:reveal|print|show|repeat)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions)",
        re.IGNORECASE)),
}
_UNAVAILABLE: Final = ("person-name", "address")

FIELDS: Final[dict[str, Check]] = {
    "name": String(min_length=1, max_length=200),
    "description": String(max_length=1000),
    "allowed_models": _NAMES,
    "ignored_models": _NAMES,
    "allowed_providers": _NAMES,
    "ignored_providers": _NAMES,
    "limit_usd": Number(0, 1_000_000_000),
    "reset_interval": _INTERVAL,
    "include_byok_in_budgets": boolean,
    "enforce_zdr": boolean,
    **{f"enforce_zdr_{author}": boolean for author in ZDR_GROUPS},
    "enable_free_model_publication": boolean,
    "enable_free_model_training": boolean,
    "enable_paid_model_training": boolean,
    "content_filters": ListOf(Obj({"pattern": String(min_length=1, max_length=1000), "action": _ACTION,
                                   "label": String(max_length=100)}, required=["pattern", "action"]),
                              max_items=100),
    "content_filter_builtins": ListOf(Obj({"slug": Enum(*BUILTINS, *_UNAVAILABLE), "action": _ACTION,
                                           "label": String(max_length=100),
                                           "scan_scope": Enum("user_only", "all_messages")},
                                          required=["slug", "action"]), max_items=20),
    "workspace_id": String(),
}
CREATE: Final = Obj(FIELDS, required=["name"])
UPDATE: Final = Obj({k: v for k, v in FIELDS.items() if k != "workspace_id"})
#: Fields kept in the stored rules (name and description are columns of their own).
RULE_FIELDS: Final = tuple(k for k in FIELDS if k not in ("name", "description", "workspace_id"))


def check_rules(rules: dict[str, Any], path: str = "body") -> None:
    """What the table cannot say: the regexes compile, and the builtins are ones this gateway applies."""
    for i, entry in enumerate(rules.get("content_filters") or ()):
        try:
            re.compile(entry["pattern"])
        except re.error as exc:
            raise InvalidParameter(f"{path}.content_filters[{i}].pattern", f"not a valid regex: {exc}") from None
    for i, entry in enumerate(rules.get("content_filter_builtins") or ()):
        if entry["slug"] in _UNAVAILABLE:
            raise InvalidParameter(f"{path}.content_filter_builtins[{i}].slug",
                                   f"'{entry['slug']}' needs a named-entity model, which this gateway does not "
                                   f"run; the regex builtins are {', '.join(BUILTINS)}")


@dataclass(frozen=True, slots=True)
class Filter:
    label: str
    pattern: re.Pattern[str]
    action: str
    user_only: bool


class Names:
    """Model or provider names, exact or with `*` wildcards, compared case-insensitively."""

    __slots__ = ("exact", "patterns")

    def __init__(self, names: list[str]) -> None:
        lowered = [n.lower() for n in names]
        self.exact = frozenset(n for n in lowered if "*" not in n)
        self.patterns = tuple(n for n in lowered if "*" in n)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        name = name.lower()
        return name in self.exact or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


class Guardrail:
    """A stored guardrail, compiled for checking requests."""

    __slots__ = ("allowed_models", "allowed_providers", "filters", "ignored_models", "ignored_providers", "limit",
                 "record", "reset", "rules", "zdr")

    def __init__(self, record: GuardrailRecord, rules: dict[str, Any]) -> None:
        self.record = record
        self.rules = rules
        self.allowed_models = Names(rules["allowed_models"]) if rules.get("allowed_models") else None
        self.ignored_models = Names(rules.get("ignored_models") or [])
        self.allowed_providers = Names(rules["allowed_providers"]) if rules.get("allowed_providers") else None
        self.ignored_providers = Names(rules.get("ignored_providers") or [])
        fallback = rules.get("enforce_zdr")
        self.zdr = {author: bool(rules.get(f"enforce_zdr_{author}", fallback)) for author in ZDR_GROUPS}
        limit = rules.get("limit_usd")
        self.limit: float | None = None if limit is None else float(limit)
        self.reset: str | None = rules.get("reset_interval")
        filters = [Filter(f"[{e.get('label') or 'REDACTED'}]", re.compile(e["pattern"]), e["action"], False)
                   for e in rules.get("content_filters") or ()]
        filters += [Filter(BUILTINS[e["slug"]][0], BUILTINS[e["slug"]][1], e["action"],
                           e.get("scan_scope") == "user_only")
                    for e in rules.get("content_filter_builtins") or () if e["slug"] in BUILTINS]
        self.filters = tuple(filters)

    @property
    def name(self) -> str:
        return self.record.name

    def allows_model(self, model_id: str) -> bool:
        base = model_id.split(":", 1)[0]
        if self.allowed_models is not None and base not in self.allowed_models and model_id not in self.allowed_models:
            return False
        return base not in self.ignored_models and model_id not in self.ignored_models

    def allows_provider(self, slug: str, name: str) -> bool:
        if self.allowed_providers is not None and slug not in self.allowed_providers \
                and name not in self.allowed_providers:
            return False
        return slug not in self.ignored_providers and name not in self.ignored_providers

    def needs_zdr(self, model_id: str) -> bool:
        return self.zdr[zdr_group(model_id)]


__all__ = ["BUILTINS", "CREATE", "RULE_FIELDS", "UPDATE", "Filter", "Guardrail", "Names", "check_rules"]
