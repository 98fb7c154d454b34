"""Fixtures of the web search tests (`test_web_search.py`, `test_web_search_tool.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from crossroads.sim import SimServer
from tests.conftest import Gateway, GatewayFactory


def providers(sim: SimServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "sk-ant", "CROSSROADS_PROVIDER_ANTHROPIC_BASE_URL": sim.url,
            "GEMINI_API_KEY": "gm-key", "CROSSROADS_PROVIDER_GOOGLE_AI_STUDIO_BASE_URL": sim.url,
            "OPENAI_API_KEY": "sk-oa", "CROSSROADS_PROVIDER_OPENAI_BASE_URL": f"{sim.url}/v1"}


@pytest.fixture
async def search_gw(start_gateway: GatewayFactory, sim: SimServer) -> AsyncIterator[Gateway]:
    """The built-in catalog's Anthropic, Gemini and OpenAI providers on the simulator, searching with its
    Exa-shaped backend."""
    env = {**providers(sim), "CROSSROADS_WEB_SEARCH_API": "exa", "CROSSROADS_WEB_SEARCH_URL": f"{sim.url}/exa",
           "CROSSROADS_WEB_SEARCH_KEY": "exa-key"}
    async with start_gateway(env=env, simulator="off") as gateway:
        yield gateway


def client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)
