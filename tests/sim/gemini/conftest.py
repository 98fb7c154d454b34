"""A `google-genai` client on the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from google import genai
from google.genai import types

from crossroads.sim import SimServer


@pytest.fixture
async def gemini(sim: SimServer) -> AsyncIterator[genai.client.AsyncClient]:
    client = genai.Client(api_key="sim-key", http_options=types.HttpOptions(base_url=sim.url, api_version="v1beta"))
    yield client.aio
    await client.aio.aclose()
