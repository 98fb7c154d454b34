"""A request checked against its key's guardrails: the prompt screened by the content filters, the spend limits,
and — through the planner, as a `Fence` — the models and endpoints the key may use.

Every API a key can call is held to them: the chat-shaped ones (`screen` over the messages), and those that
send texts of their own upstream — embedding inputs, a rerank query and its documents (`screen_texts`, all
of which count as the user's).

Every refusal is a 403 naming the guardrail. A key with several guardrails is held to all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from msgspec import structs

from crossroads.catalog.types import Endpoint, Model
from crossroads.errors import Forbidden, NotFound
from crossroads.guardrails.book import GuardrailBook
from crossroads.guardrails.rules import Filter, Guardrail
from crossroads.ledger.accounting import from_nanos
from crossroads.ledger.keys import Key, KeyRing
from crossroads.schema.request import ChatRequest


class Refused(Forbidden):
    """A request outside a guardrail of its key."""

    def __init__(self, rail: Guardrail, why: str) -> None:
        super().__init__(f"Guardrail '{rail.name}' ({rail.record.id}): {why}",
                         metadata={"guardrail_id": rail.record.id, "guardrail_name": rail.name})


class Guard:
    """The guardrails of one key, for one request."""

    __slots__ = ("rails",)

    def __init__(self, rails: tuple[Guardrail, ...]) -> None:
        self.rails = rails

    # -- the Fence the planner asks ---------------------------------------------------------------------------

    def refuses(self, model: Model, endpoint: Endpoint) -> str | None:
        """The name of the guardrail that keeps this endpoint of this model from the key, or None."""
        provider = endpoint.provider
        for rail in self.rails:
            if not rail.allows_model(model.id) or not rail.allows_provider(provider.slug, provider.name) or \
                    (rail.needs_zdr(model.id) and not provider.data_policy.zdr):
                return rail.name
        return None

    def allows_model(self, model: Model) -> bool:
        """Whether `/models/user` lists the model: some endpoint of it passes every guardrail."""
        return any(self.refuses(model, endpoint) is None for endpoint in model.endpoints)

    def refusal(self, names: set[str], models: tuple[str, ...]) -> Forbidden:
        """The error when guardrails (`names`) left no endpoint for `models`."""
        rail = next(r for r in self.rails if r.name in names)
        return Refused(rail, f"{', '.join(models)} may not be used with this key (allowed and ignored models "
                             "and providers, zero data retention)")

    # -- before routing ----------------------------------------------------------------------------------------

    def check_spend(self, book: GuardrailBook, keys: KeyRing, now: float) -> None:
        for rail in self.rails:
            if rail.limit is None:
                continue
            spent = sum(_spent(keys, key_hash, rail.reset, now) for key_hash in book.keys_of(rail.record.id))
            if from_nanos(spent) >= rail.limit:
                raise Refused(rail, f"its spend limit of {rail.limit:g} USD"
                                    f"{' per ' + _PERIODS[rail.reset] if rail.reset else ''} is used up")

    def _filters(self) -> list[tuple[Guardrail, Filter]]:
        """The content filters that change or refuse what is sent (a `flag` filter only marks it)."""
        return [(rail, f) for rail in self.rails for f in rail.filters if f.action != "flag"]

    def screen(self, request: ChatRequest) -> ChatRequest:
        """The request with its prompt checked by every content filter: a `block` match refuses it, `redact`
        replaces the matches with the filter's label."""
        filters = self._filters()
        if not filters:
            return request
        changed = False
        messages = []
        for message in request.messages:
            new = _screen_message(message, filters)
            changed |= new is not message
            messages.append(new)
        if not changed:
            return request
        # The client's own body (`native`) would carry the unredacted text: the translation goes instead.
        return structs.replace(request, messages=messages, native=None)

    def screen_texts(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        """Texts sent upstream as they are (not messages), checked by every content filter: a `block` match
        refuses the request, `redact` replaces the matches. The same tuple when nothing changed."""
        filters = self._filters()
        if not filters:
            return texts
        screened = tuple(_screen_text(text, filters) for text in texts)
        return texts if all(a is b for a, b in zip(screened, texts, strict=True)) else screened


_PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}


def _spent(keys: KeyRing, key_hash: str, reset: str | None, now: float) -> int:
    try:
        key: Key = keys.get(key_hash)
    except NotFound:
        return 0
    key.spend.roll(now)
    return key.spend.in_period(reset)


def _screen_message(message: dict[str, Any], filters: list[tuple[Guardrail, Filter]]) -> dict[str, Any]:
    role = message.get("role")
    content = message.get("content")
    applying = [(rail, f) for rail, f in filters if role == "user" or not f.user_only]
    if isinstance(content, str):
        text = _screen_text(content, applying)
        return message if text is content else {**message, "content": text}
    if isinstance(content, list):
        parts = [_screen_part(part, applying) for part in content]
        if any(a is not b for a, b in zip(parts, content, strict=True)):
            return {**message, "content": parts}
    return message


def _screen_part(part: Any, filters: list[tuple[Guardrail, Filter]]) -> Any:
    text = part.get("text") if isinstance(part, dict) else None
    if not isinstance(text, str):
        return part
    screened = _screen_text(text, filters)
    return part if screened is text else {**part, "text": screened}


def _screen_text(text: str, filters: list[tuple[Guardrail, Filter]]) -> str:
    for rail, f in filters:
        if f.action == "block":
            if f.pattern.search(text):
                raise Refused(rail, f"the prompt matches the content filter {f.label}")
        else:
            redacted, count = f.pattern.subn(f.label, text)
            if count:
                text = redacted
    return text


class Guardrails:
    """What the inference path asks: the guard of a key, or None when it has no guardrail."""

    def __init__(self, book: GuardrailBook, keys: KeyRing, clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.keys = keys
        self.clock = clock

    def guard(self, key: Key) -> Guard | None:
        rails = self.book.of_key(key.hash)
        return Guard(rails) if rails else None

    def admit(self, key: Key) -> Guard | None:
        """The key's guard, once its guardrails' spend limits allow another request; None without guardrails."""
        guard = self.guard(key)
        if guard is not None:
            guard.check_spend(self.book, self.keys, self.clock())
        return guard

    def check(self, key: Key, request: ChatRequest) -> tuple[ChatRequest, Guard | None]:
        """The request as its key's guardrails let it through (screened), and the guard for routing."""
        guard = self.admit(key)
        if guard is None:
            return request, None
        return guard.screen(request), guard


__all__ = ["Guard", "Guardrails", "Refused"]
