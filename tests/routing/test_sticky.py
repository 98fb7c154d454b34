from __future__ import annotations

import openai

from crossroads.routing.sticky import Sticky, conversation_of
from crossroads.schema.chat import parse_chat_request
from crossroads.sim import SimServer
from tests.conftest import GatewayFactory, provider_keys, upstream_catalog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(**fields: object) -> object:
    body = {"model": "a/b", "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "hello"}], **fields}
    return parse_chat_request(body, "a/b")


def test_entries_expire_after_the_ttl_and_a_success_refreshes_them() -> None:
    clock = Clock()
    sticky = Sticky(ttl=600, clock=clock)
    sticky.remember("c", "e1")
    clock.now = 599
    assert sticky.get("c") == "e1"
    sticky.remember("c", "e1")
    clock.now = 1100
    assert sticky.get("c") == "e1"
    clock.now = 1200
    assert sticky.get("c") is None and len(sticky) == 0


def test_the_table_is_bounded_least_recently_used_first() -> None:
    sticky = Sticky(capacity=2)
    sticky.remember("a", "e1")
    sticky.remember("b", "e2")
    sticky.remember("a", "e3")
    sticky.remember("c", "e4")
    assert len(sticky) == 2
    assert sticky.get("b") is None and sticky.get("a") == "e3" and sticky.get("c") == "e4"


def test_a_conversation_is_named_by_session_user_or_its_prefix() -> None:
    plain, named = conversation_of(request(), "k1")  # type: ignore[arg-type]
    assert not named
    assert conversation_of(request(session_id="s"), "k1")[1] and conversation_of(request(user="u"), "k1")[1]  # type: ignore[arg-type]
    later_turn = parse_chat_request({"model": "a/b", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]}, "a/b")
    assert conversation_of(later_turn, "k1")[0] == plain
    assert conversation_of(later_turn, "k2")[0] != plain  # accounts never share an entry
    assert conversation_of(request(session_id="s1"), "k1")[0] != plain  # type: ignore[arg-type]
    assert conversation_of(request(session_id="s1", user="u"), "k1") == \
        conversation_of(request(session_id="s1", messages=[{"role": "user", "content": "x"}]), "k1")  # type: ignore[arg-type]
    assert conversation_of(request(user="u"), "k1") != conversation_of(request(user="v"), "k1")  # type: ignore[arg-type]


async def test_a_conversation_sticks_to_the_endpoint_that_served_it(start_gateway: GatewayFactory,
                                                                   sim: SimServer) -> None:
    toml = upstream_catalog(sim.url, {"test/m": [{"provider": slug, "upstream_model": f"m-{slug}"}
                                                 for slug in ("alpha", "beta", "gamma")]})
    async with start_gateway(env=provider_keys("alpha", "beta", "gamma"), catalog=toml) as gw, \
            openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as c:
        async def served(**extra: object) -> str:
            await c.chat.completions.create(model="test/m", messages=[{"role": "user", "content": "hi"}],
                                            extra_body=extra)
            return str(sim.requests[-1].body["model"])

        for session in ("s1", "s2", "s3", "s4"):
            first = await served(session_id=session)
            assert {await served(session_id=session) for _ in range(4)} == {first}
        # known only by its prefix, a conversation sticks once the provider's prompt cache hits: before,
        # identical requests are load balanced (all three prices are equal)
        assert len({await served() for _ in range(12)}) > 1
        for slug in ("alpha", "beta", "gamma"):
            sim.set_behaviour(f"m-{slug}", "cached=4")
        first = await served()
        assert {await served() for _ in range(4)} == {first}
        # provider.order decides over stickiness
        assert await served(session_id="s1", provider={"order": ["gamma"]}) == "m-gamma"
        # a failing endpoint is left for a healthy one
        sim.set_behaviour(first, "status=500")
        assert await served() != first
        sim.clear_behaviour()
        # other conversations are spread by the load balancer
        spread = {await served(user=f"user-{i}") for i in range(12)}
    assert len(spread) > 1
