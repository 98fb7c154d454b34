"""Model authors as OpenRouter's guardrails group them for zero data retention (`enforce_zdr_openai`,
`_anthropic`, `_google`, `_xai`, and `_other` for every other author)."""

from __future__ import annotations

from typing import Final

#: The groups, `other` last.
ZDR_GROUPS: Final = ("openai", "anthropic", "google", "xai", "other")
#: Author prefixes of model ids that belong to a group under another name.
_ALIASES: Final = {"x-ai": "xai"}


def zdr_group(model_id: str) -> str:
    """The group of a model (`author/slug`) by its author."""
    author = model_id.split("/", 1)[0].lower()
    author = _ALIASES.get(author, author)
    return author if author in ZDR_GROUPS else "other"
