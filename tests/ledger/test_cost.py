"""Cost figures against hand-computed examples, one per price component."""

from __future__ import annotations

from decimal import Decimal

from crossroads.catalog.types import Pricing
from crossroads.ledger.cost import cost_of, from_nanos, to_nanos, worst_case
from crossroads.schema.usage import Usage

M = Decimal(1_000_000)


def per_million(**prices: str) -> Pricing:
    values = {k: Decimal(v) / M for k, v in prices.items() if k not in ("request", "image", "web_search",
                                                                           "discount")}
    values.update({k: Decimal(v) for k, v in prices.items() if k in ("request", "image", "web_search", "discount")})
    return Pricing(**values)  # type: ignore[arg-type]


def test_prompt_and_completion() -> None:
    # gpt-4o: $2.50 / $10 per million; 1,000 in, 500 out = 0.0025 + 0.005
    cost = cost_of(Usage(1000, 500), per_million(prompt="2.50", completion="10"))
    assert cost.total == Decimal("0.0075")
    assert (cost.prompt, cost.completion) == (Decimal("0.0025"), Decimal("0.005"))


def test_cache_reads_and_writes() -> None:
    # Claude Sonnet: $3 in, $15 out, cache read $0.30, 5-minute write $3.75, 1-hour write $6 (per million).
    pricing = per_million(prompt="3", completion="15", input_cache_read="0.30", input_cache_write="3.75",
                          input_cache_write_1h="6")
    usage = Usage(prompt_tokens=10_000, completion_tokens=100, cached_tokens=6_000, cache_write_tokens=2_000,
                  cache_write_1h_tokens=1_000)
    # uncached 1,000 × 3 + 6,000 × 0.30 + 2,000 × 3.75 + 1,000 × 6 = 3,000 + 1,800 + 7,500 + 6,000 = 18,300 µ$
    # completion 100 × 15 = 1,500 µ$
    assert cost_of(usage, pricing).total == Decimal("0.0198")


def test_cache_without_published_cache_prices_costs_the_prompt_price() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=500)
    assert cost_of(usage, per_million(prompt="1", completion="1")).total == Decimal("0.001")


def test_reasoning_tokens_at_their_own_price_or_the_completion_price() -> None:
    usage = Usage(prompt_tokens=0, completion_tokens=1000, reasoning_tokens=800)
    assert cost_of(usage, per_million(prompt="1", completion="10")).total == Decimal("0.01")
    priced = per_million(prompt="1", completion="10", internal_reasoning="5")
    # 200 × 10 + 800 × 5 = 6,000 µ$
    assert cost_of(usage, priced).total == Decimal("0.006")


def test_per_request_per_image_and_web_search() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=10, images=2, web_search_requests=3)
    pricing = per_million(prompt="1", completion="2", request="0.005", image="0.001", web_search="0.004")
    # 100 × 1 µ$ + 2 × 0.001 + 10 × 2 µ$ + 0.005 + 3 × 0.004 = 0.0001 + 0.002 + 0.00002 + 0.005 + 0.012
    assert cost_of(usage, pricing).total == Decimal("0.01912")


def test_audio_and_image_output_tokens() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500, audio_prompt_tokens=400, image_completion_tokens=300)
    pricing = per_million(prompt="1", completion="2", audio="10", image_token="30")
    # prompt 600 × 1 + 400 × 10 = 4,600 µ$; completion 200 × 2 + 300 × 30 = 9,400 µ$
    assert cost_of(usage, pricing).total == Decimal("0.014")


def test_discount() -> None:
    pricing = per_million(prompt="10", completion="10", discount="0.25")
    assert cost_of(Usage(1000, 0), pricing).total == Decimal("0.0075")


def test_free_endpoint_costs_nothing() -> None:
    assert cost_of(Usage(10_000, 10_000), per_million(prompt="0", completion="0")).total == 0


def test_worst_case_bounds_every_real_cost() -> None:
    pricing = per_million(prompt="3", completion="15", input_cache_write="3.75", internal_reasoning="20")
    bound = worst_case(1000, 500, pricing)
    for usage in (Usage(1000, 500), Usage(1000, 500, cache_write_tokens=1000), Usage(1000, 500, reasoning_tokens=500)):
        assert cost_of(usage, pricing).total <= bound


def test_nanodollar_rounding_is_exact() -> None:
    assert to_nanos(Decimal("0.0000000015")) == 2  # half-even: 1.5 → 2
    assert to_nanos(Decimal("0.0000000025")) == 2
    assert from_nanos(7_100) == Decimal("0.0000071")


def test_integer_and_decimal_paths_agree() -> None:
    import random

    from crossroads.ledger.cost import _decimal_cost

    rng = random.Random(7)
    for _ in range(2000):
        prices = {k: str(rng.choice([0, 0.01, 0.075, 0.15, 1.25, 2.5, 3, 15, 60, 75]))
                  for k in ("prompt", "completion", "input_cache_read", "input_cache_write", "internal_reasoning")}
        pricing = per_million(**prices, request=str(rng.choice([0, 0.005])), image=str(rng.choice([0, 0.001])))
        prompt = rng.randrange(0, 200_000)
        completion = rng.randrange(0, 20_000)
        usage = Usage(prompt, completion, cached_tokens=rng.randrange(0, prompt + 1) // 2,
                      cache_write_tokens=rng.randrange(0, prompt + 1) // 3,
                      reasoning_tokens=rng.randrange(0, completion + 1), images=rng.randrange(0, 3))
        assert pricing.picos is not None
        assert cost_of(usage, pricing) == _decimal_cost(usage, pricing)


def test_integer_nanos_and_worst_case_round_as_the_ledger_does() -> None:
    import random

    from crossroads.ledger.cost import nanos_of, worst_nanos

    for picos in (0, 499, 500, 1500, 2500, 2501, 1_000_000, -1500, -2500, -1499):
        assert nanos_of(picos) == to_nanos(Decimal(picos).scaleb(-12))
    rng = random.Random(11)
    for _ in range(2000):
        prices = {k: str(rng.choice([0, 0.01, 0.075, 0.15, 1.25, 2.5, 3, 15, 60, 75]))
                  for k in ("prompt", "completion", "input_cache_write", "internal_reasoning")}
        pricing = per_million(**prices, request=str(rng.choice([0, 0.005])))
        prompt, output = rng.randrange(0, 200_000), rng.randrange(1, 20_000)
        assert worst_nanos(prompt, output, pricing) == to_nanos(worst_case(prompt, output, pricing))
        usage = Usage(prompt, output, reasoning_tokens=rng.randrange(0, output + 1))
        cost = cost_of(usage, pricing)
        assert cost.nanos == to_nanos(cost.total)
    odd = per_million(prompt="0.0000001", completion="1")  # finer than a picodollar: the Decimal path
    assert odd.picos is None
    assert worst_nanos(10, 10, odd) == to_nanos(worst_case(10, 10, odd))
    odd_cost = cost_of(Usage(10, 10), odd)
    assert odd_cost.nanos == to_nanos(odd_cost.total)
