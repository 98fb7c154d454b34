"""`CROSSROADS_PROVIDER_SIMULATOR_BASE_URL` points the gateway at a simulator running elsewhere, as every
provider's base URL can be overridden: requests for the simulator go there, and the built-in one never starts."""

from __future__ import annotations

import openai
import pytest

from crossroads.sim import SimServer
from tests.conftest import GatewayFactory


@pytest.mark.parametrize("suffix", ["", "/v1"])
async def test_requests_for_the_simulator_go_to_the_one_named(start_gateway: GatewayFactory, sim: SimServer,
                                                              suffix: str) -> None:
    env = {"CROSSROADS_PROVIDER_SIMULATOR_BASE_URL": sim.url + suffix}
    async with start_gateway(env=env) as gw:
        assert gw.services.simulator is None
        async with openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client:
            for model in ("openai/gpt-4o", "anthropic/claude-sonnet-4.5"):
                reply = await client.chat.completions.create(model=model,
                                                             messages=[{"role": "user", "content": "Hello"}])
                assert reply.choices[0].message.content
                assert (reply.model_extra or {})["provider"] == "Simulator"
    assert [(r.method, r.path) for r in sim.requests] == [("POST", "/v1/chat/completions"), ("POST", "/v1/messages")]


async def test_without_it_the_built_in_simulator_serves(start_gateway: GatewayFactory, sim: SimServer) -> None:
    async with start_gateway() as gw:
        assert gw.services.simulator is not None
        async with openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0) as client:
            await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert gw.services.simulator.stats["requests"] == 1
    assert sim.requests == []
