"""What a generation costs: usage × the serving endpoint's prices, in exact decimals.

    prompt     = uncached prompt tokens × prompt
               + cached tokens × input_cache_read            (prompt price when no cache price is published)
               + cache-write tokens × input_cache_write[_1h]  (likewise)
               + audio prompt tokens × audio
               + input images × image
    completion = (completion − reasoning) tokens × completion
               + reasoning tokens × internal_reasoning       (completion price when none is published)
               + image output tokens × image_token
    total      = (prompt + completion + request + web searches × web_search) × (1 − discount)

The figure in a response's `usage.cost` is the figure charged to the key.

Prices with no finer grain than a picodollar per unit (all real ones) are computed in integers, which is
exact and several times faster than `Decimal`; anything else (or a discount) takes the `Decimal` path.
Both give the same figures, the total also in nanodollars (what the ledger and the budget count, rounded
half to even), which the integer path reaches without a `Decimal` on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from crossroads.catalog.types import Pricing
from crossroads.schema.usage import Usage

ZERO = Decimal(0)
_NANO = Decimal(1).scaleb(-9)


def to_nanos(usd: Decimal) -> int:
    return int((usd / _NANO).to_integral_value(ROUND_HALF_EVEN))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


@dataclass(frozen=True, slots=True)
class Cost:
    total: Decimal
    prompt: Decimal
    completion: Decimal
    #: `total` in nanodollars, rounded half to even.
    nanos: int

    @classmethod
    def free(cls) -> Cost:
        return cls(ZERO, ZERO, ZERO, 0)


def cost_of(usage: Usage, pricing: Pricing) -> Cost:
    picos = pricing.picos
    if picos is None or pricing.discount:
        return _decimal_cost(usage, pricing)
    cached = usage.cached_tokens or 0
    written = usage.cache_write_tokens or 0
    written_1h = usage.cache_write_1h_tokens or 0
    audio_in = usage.audio_prompt_tokens or 0
    plain_prompt = max(usage.prompt_tokens - cached - written - written_1h - audio_in, 0)
    prompt = (plain_prompt * picos.prompt + cached * picos.cache_read + written * picos.cache_write
              + written_1h * picos.cache_write_1h + audio_in * picos.audio + usage.images * picos.image)
    reasoning = min(usage.reasoning_tokens or 0, usage.completion_tokens)
    image_out = min(usage.image_completion_tokens or 0, usage.completion_tokens - reasoning)
    completion = ((usage.completion_tokens - reasoning - image_out) * picos.completion
                  + reasoning * picos.reasoning + image_out * picos.image_token)
    extras = picos.request + (usage.web_search_requests or 0) * picos.web_search
    total = prompt + completion + extras
    return Cost(total=_usd(total), prompt=_usd(prompt), completion=_usd(completion), nanos=nanos_of(total))


def nanos_of(picos: int) -> int:
    """Picodollars in nanodollars, rounded half to even (as `to_nanos` rounds USD)."""
    nanos, rest = divmod(picos, 1000)
    return nanos + 1 if rest > 500 or (rest == 500 and nanos % 2) else nanos


def _usd(picos: int) -> Decimal:
    return Decimal(picos).scaleb(-12).normalize() if picos else ZERO


def _decimal_cost(usage: Usage, pricing: Pricing) -> Cost:
    cached = usage.cached_tokens or 0
    written = usage.cache_write_tokens or 0
    written_1h = usage.cache_write_1h_tokens or 0
    audio_in = usage.audio_prompt_tokens or 0
    plain_prompt = max(usage.prompt_tokens - cached - written - written_1h - audio_in, 0)
    write_price = _or(pricing.input_cache_write, pricing.prompt)
    prompt = (
        plain_prompt * pricing.prompt
        + cached * _or(pricing.input_cache_read, pricing.prompt)
        + written * write_price
        + written_1h * _or(pricing.input_cache_write_1h, write_price)
        + audio_in * _or(pricing.audio, pricing.prompt)
        + usage.images * (pricing.image or ZERO)
    )
    reasoning = min(usage.reasoning_tokens or 0, usage.completion_tokens)
    image_out = min(usage.image_completion_tokens or 0, usage.completion_tokens - reasoning)
    completion = (
        (usage.completion_tokens - reasoning - image_out) * pricing.completion
        + reasoning * _or(pricing.internal_reasoning, pricing.completion)
        + image_out * _or(pricing.image_token, pricing.completion)
    )
    extras = (pricing.request or ZERO) + (usage.web_search_requests or 0) * (pricing.web_search or ZERO)
    keep = 1 - pricing.discount
    total = (prompt + completion + extras) * keep
    return Cost(total=total, prompt=prompt * keep, completion=completion * keep, nanos=to_nanos(total))


def worst_case(prompt_tokens: int, max_output: int, pricing: Pricing) -> Decimal:
    """The most a request can cost before it runs: every prompt token uncached, every output token at the
    dearer of the completion and reasoning prices. Used to reserve spend against a key's limit."""
    output_price = max(pricing.completion, pricing.internal_reasoning or ZERO, pricing.image_token or ZERO)
    return (prompt_tokens * max(pricing.prompt, pricing.input_cache_write or ZERO)
            + max_output * output_price + (pricing.request or ZERO))


def worst_nanos(prompt_tokens: int, max_output: int, pricing: Pricing) -> int:
    """`worst_case` in nanodollars (rounded as the ledger rounds), in integers where the prices are integer
    picodollars."""
    picos = pricing.picos
    if picos is None:
        return to_nanos(worst_case(prompt_tokens, max_output, pricing))
    return nanos_of(prompt_tokens * max(picos.prompt, picos.cache_write)
                    + max_output * max(picos.completion, picos.reasoning, picos.image_token) + picos.request)


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value
