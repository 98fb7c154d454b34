"""Routing plans: filters, the 1/price² default, sorts, `order`, variants and model fallbacks."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from crossroads.catalog.loader import build
from crossroads.errors import NoEndpoints, UnknownModel
from crossroads.providers.registry import build_adapters
from crossroads.routing.health import Health, Outcome
from crossroads.routing.plan import Planner, Policy
from crossroads.schema.chat import parse_chat_request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(slug: str, **extra: Any) -> dict[str, Any]:
    return {"name": slug.upper() if len(slug) <= 3 else slug.title(), "base_url": f"https://{slug}.test/v1",
            "api_key_env": f"{slug.upper()}_KEY", **extra}


DOCUMENT: dict[str, Any] = {
    "providers": {
        "cheap": provider("cheap", data_policy={"training": True, "retains_prompts": True}),
        "mid": provider("mid", data_policy={"training": False, "retains_prompts": False}),
        "dear": provider("dear", data_policy={"training": False, "retains_prompts": True}),
        "nokey": provider("nokey"),
    },
    "models": {
        "org/open": {
            "name": "Open", "context_length": 32000, "input_modalities": ["text", "image"],
            "features": {"tools": True, "response_format": True},
            "endpoints": [
                {"provider": "cheap", "pricing": {"prompt": "1", "completion": "1"}, "quantization": "fp8",
                 "max_completion_tokens": 1000, "input_modalities": ["text"]},
                {"provider": "mid", "pricing": {"prompt": "2", "completion": "2"}, "quantization": "bf16",
                 "features": {"tools": False}},
                {"provider": "dear", "pricing": {"prompt": "3", "completion": "3"}, "quantization": "fp8",
                 "context_length": 8000},
                {"provider": "nokey", "pricing": {"prompt": "0.5", "completion": "0.5"}},
            ],
        },
        "org/other": {"name": "Other", "context_length": 8000,
                      "endpoints": [{"provider": "mid", "pricing": {"prompt": "5", "completion": "5"}}]},
        "org/free:free": {"name": "Free", "context_length": 8000,
                          "endpoints": [{"provider": "cheap", "pricing": {"prompt": "0", "completion": "0"}}]},
    },
}
KEYS = {"CHEAP_KEY": "k", "MID_KEY": "k", "DEAR_KEY": "k"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def planner(clock: Clock, seed: int = 7, policy: Policy | None = None, document: dict[str, Any] | None = None) \
        -> Planner:
    catalog = build(document or DOCUMENT, KEYS)
    return Planner(catalog, build_adapters(), Health(clock), policy or Policy(simulator_default=False),
                   random.Random(seed))


def order(p: Planner, **body: Any) -> list[str]:
    request = parse_chat_request({"model": "org/open", "messages": [{"role": "user", "content": "hi"}], **body},
                                 "org/open")
    return [e.provider.slug for e in p.plan(request).endpoints()]


def test_weighted_pick_converges_to_inverse_square_price_shares(clock: Clock) -> None:
    p = planner(clock, seed=12345)
    firsts = Counter(order(p)[0] for _ in range(20_000))
    weights = {"cheap": 1 / 1**2, "mid": 1 / 2**2, "dear": 1 / 3**2}
    total = sum(weights.values())
    for slug, weight in weights.items():
        assert firsts[slug] / 20_000 == pytest.approx(weight / total, abs=0.015)


def test_fallbacks_follow_ascending_price_and_unconfigured_providers_are_out(clock: Clock) -> None:
    p = planner(clock, seed=1)
    for _ in range(50):
        plan = order(p)
        assert "nokey" not in plan and sorted(plan) == ["cheap", "dear", "mid"]
        rest = plan[1:]
        prices = {"cheap": 1, "mid": 2, "dear": 3}
        assert rest == sorted(rest, key=prices.__getitem__)


def test_recently_failing_endpoint_goes_last_and_comes_back(clock: Clock) -> None:
    p = planner(clock)
    for _ in range(3):
        p.health.record(Outcome("org/open|cheap", 503, clock.now))
    for _ in range(200):
        assert order(p)[-1] == "cheap"
    clock.now += 31  # the outage window has passed
    assert Counter(order(p)[0] for _ in range(500))["cheap"] > 250


def test_one_stray_failure_among_successes_does_not_demote(clock: Clock) -> None:
    p = planner(clock)
    for _ in range(20):
        p.health.record(Outcome("org/open|cheap", 200, clock.now, ttft=0.1))
    p.health.record(Outcome("org/open|cheap", 500, clock.now))
    assert not p.health.recently_failing("org/open|cheap")


def test_rate_limits_and_bad_requests_do_not_count_as_outages(clock: Clock) -> None:
    p = planner(clock)
    for status in (429, 429, 429, 400, 413):
        p.health.record(Outcome("org/open|cheap", status, clock.now))
    assert not p.health.recently_failing("org/open|cheap")


def test_sort_price_is_deterministic(clock: Clock) -> None:
    p = planner(clock)
    assert {tuple(order(p, provider={"sort": "price"})) for _ in range(20)} == {("cheap", "mid", "dear")}
    assert order(p, provider={"sort": {"by": "price", "partition": "none"}}) == ["cheap", "mid", "dear"]


def test_floor_and_nitro_variants(clock: Clock) -> None:
    p = planner(clock)
    request = parse_chat_request({"model": "org/open:floor", "messages": [{"role": "user", "content": "x"}]}, "d")
    assert [e.provider.slug for e in p.plan(request).endpoints()] == ["cheap", "mid", "dear"]
    p.health.record(Outcome("org/open|dear", 200, clock.now, ttft=0.1, tokens_per_second=300))
    p.health.record(Outcome("org/open|mid", 200, clock.now, ttft=0.2, tokens_per_second=100))
    request = parse_chat_request({"model": "org/open:nitro", "messages": [{"role": "user", "content": "x"}]}, "d")
    assert [e.provider.slug for e in p.plan(request).endpoints()] == ["dear", "mid", "cheap"]
    latency = order(p, provider={"sort": "latency"})
    assert latency == ["dear", "mid", "cheap"]


def test_preferred_min_throughput_moves_slow_endpoints_last_without_dropping_them(clock: Clock) -> None:
    p = planner(clock)
    for slug, rate in (("cheap", 40.0), ("mid", 150.0), ("dear", 300.0)):
        for _ in range(5):
            p.health.record(Outcome(f"org/open|{slug}", 200, clock.now, ttft=0.2, tokens_per_second=rate))
    for _ in range(100):
        plan = order(p, provider={"preferred_min_throughput": 100})
        assert plan[-1] == "cheap" and sorted(plan) == ["cheap", "dear", "mid"]
    assert order(p, provider={"sort": "price", "preferred_min_throughput": 200}) == ["dear", "cheap", "mid"]
    # Soft: when nobody meets it, everyone stays, in the usual order.
    assert order(p, provider={"sort": "price", "preferred_min_throughput": 1000}) == ["cheap", "mid", "dear"]


def test_preferred_max_latency_takes_percentile_cutoffs_and_ignores_endpoints_without_data(clock: Clock) -> None:
    p = planner(clock)
    # cheap: usually fast, with a slow tail; mid: steady at 0.5 s; dear: never measured.
    for ttft in [0.1] * 9 + [4.0]:
        p.health.record(Outcome("org/open|cheap", 200, clock.now, ttft=ttft, tokens_per_second=100))
    for _ in range(10):
        p.health.record(Outcome("org/open|mid", 200, clock.now, ttft=0.5, tokens_per_second=100))
    by_price = {"sort": "price"}
    assert order(p, provider={**by_price, "preferred_max_latency": 1}) == ["cheap", "mid", "dear"]
    assert order(p, provider={**by_price, "preferred_max_latency": 0.3}) == ["cheap", "dear", "mid"]
    assert order(p, provider={**by_price, "preferred_max_latency": {"p50": 1, "p99": 1}}) == ["mid", "dear", "cheap"]
    # Outside the 5-minute window the figures no longer count.
    clock.now += 301
    assert order(p, provider={**by_price, "preferred_max_latency": {"p99": 0.01}}) == ["cheap", "mid", "dear"]


def test_unknown_variant_and_model_are_400(clock: Clock) -> None:
    p = planner(clock)
    with pytest.raises(UnknownModel, match="unknown variant"):
        order(p, model="org/open:turbo")
    with pytest.raises(UnknownModel):
        order(p, model="org/missing")


def test_order_puts_named_providers_first(clock: Clock) -> None:
    p = planner(clock)
    assert order(p, provider={"order": ["dear", "MID"]})[:2] == ["dear", "mid"]
    assert order(p, provider={"order": ["dear"], "allow_fallbacks": False}) == ["dear"]
    assert order(p, provider={"order": ["Dear"]})[0] == "dear"  # display names match too


def test_only_ignore_and_account_lists(clock: Clock) -> None:
    p = planner(clock)
    assert sorted(order(p, provider={"only": ["mid", "dear"]})) == ["dear", "mid"]
    assert "cheap" not in order(p, provider={"ignore": ["cheap"]})
    with pytest.raises(NoEndpoints) as caught:
        order(p, provider={"only": ["nobody"]})
    assert caught.value.code == 404
    restricted = planner(clock, policy=Policy(deny=frozenset({"cheap"}), simulator_default=False))
    assert "cheap" not in order(restricted)
    allowed = planner(clock, policy=Policy(allow=frozenset({"dear"}), simulator_default=False))
    assert order(allowed) == ["dear"]


def test_quantization_data_policy_and_zdr_filters(clock: Clock) -> None:
    p = planner(clock)
    assert sorted(order(p, provider={"quantizations": ["fp8"]})) == ["cheap", "dear"]
    assert "cheap" not in order(p, provider={"data_collection": "deny"})
    assert order(p, provider={"zdr": True}) == ["mid"]


def test_max_price_is_a_hard_filter_in_dollars_per_million(clock: Clock) -> None:
    p = planner(clock)
    assert sorted(order(p, provider={"max_price": {"prompt": 2, "completion": "2"}})) == ["cheap", "mid"]
    with pytest.raises(NoEndpoints) as caught:
        order(p, provider={"max_price": {"prompt": 0.1}})
    assert caught.value.metadata["availability"]["excluded_by"] == ["max_price"]  # type: ignore[index]


def test_context_output_and_modalities(clock: Clock) -> None:
    p = planner(clock)
    assert "cheap" not in order(p, max_tokens=2000)  # cheap's max output is 1000
    long_prompt = "word " * 8_000  # ~10k tokens estimated: too long for dear's 8k context, fine for 32k
    assert "dear" not in order(p, messages=[{"role": "user", "content": long_prompt}])
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    assert "cheap" not in order(p, messages=image)


def test_tools_prefer_endpoints_that_take_them(clock: Clock) -> None:
    p = planner(clock)
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert sorted(order(p, tools=tools)) == ["cheap", "dear"]


def test_require_parameters(clock: Clock) -> None:
    p = planner(clock)
    assert "mid" not in order(p, tools=[{"type": "function", "function": {"name": "f"}}],
                              provider={"require_parameters": True})
    with pytest.raises(NoEndpoints):
        order(p, top_a=0.5, provider={"require_parameters": True})


def test_models_fallback_list_groups_by_model(clock: Clock) -> None:
    p = planner(clock)
    request = parse_chat_request({"model": "org/other", "models": ["org/open"],
                                  "messages": [{"role": "user", "content": "x"}]}, "d")
    route = p.plan(request)
    assert [m.id for m, _ in route.groups] == ["org/other", "org/open"]
    legacy = parse_chat_request({"models": ["org/other", "org/open"], "route": "fallback",
                                 "messages": [{"role": "user", "content": "x"}]}, "d")
    assert [m.id for m, _ in p.plan(legacy).groups] == ["org/other", "org/open"]


def test_free_variant_is_its_own_model(clock: Clock) -> None:
    p = planner(clock)
    assert order(p, model="org/free:free") == ["cheap"]


def test_a_fence_keeps_excluded_endpoints_out_and_names_itself_when_nothing_is_left(clock: Clock) -> None:
    from crossroads.errors import Forbidden
    from crossroads.guardrails.enforce import Guard
    from crossroads.guardrails.rules import Guardrail
    from crossroads.storage.base import GuardrailRecord

    def guard(**rules: Any) -> Guard:
        return Guard((Guardrail(GuardrailRecord("g", "Team", None, "{}", 0.0), rules),))

    p = planner(clock)
    request = parse_chat_request({"model": "org/open", "models": ["org/other"],
                                  "messages": [{"role": "user", "content": "hi"}]}, "org/open")
    for _ in range(20):
        route = p.plan(request, guard(ignored_providers=["cheap"], enforce_zdr=True))
        assert [e.provider.slug for e in route.endpoints()] == ["mid", "mid"]  # dear keeps prompts
    only_other = p.plan(request, guard(allowed_models=["org/other"]))
    assert [m.id for m, _ in only_other.groups] == ["org/other"]
    with pytest.raises(Forbidden) as caught:
        p.plan(request, guard(allowed_providers=["dear"], ignored_models=["org/open"]))
    assert "Team" in caught.value.message
    assert [e.provider.slug for e in p.plan(request).endpoints()].count("cheap") == 1  # no fence, no change


def test_no_endpoints_names_what_the_request_can_change_first(clock: Clock) -> None:
    document = {**DOCUMENT, "models": {"org/short": {"name": "Short", "context_length": 32000, "endpoints": [
        {"provider": "cheap", "pricing": {"prompt": "1", "completion": "1"}, "max_completion_tokens": 1000},
        {"provider": "nokey", "pricing": {"prompt": "1", "completion": "1"}}]}}}
    p = planner(clock, document=document)
    request = parse_chat_request({"model": "org/short", "max_tokens": 32000,
                                  "messages": [{"role": "user", "content": "hi"}]}, "org/short")
    with pytest.raises(NoEndpoints) as caught:
        p.plan(request)
    assert caught.value.message == (
        "No endpoints found that can serve org/short: the requested max_tokens exceeds every endpoint's maximum "
        "output; its other providers are not configured (no API key or base URL).")
    assert caught.value.metadata["availability"]["excluded_by"] == ["max_tokens"]  # type: ignore[index]
