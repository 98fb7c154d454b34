"""An `anthropic` SDK client on the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from crossroads.sim import SimServer


@pytest.fixture
async def claude(sim: SimServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="sk-ant-test", max_retries=0, timeout=10)
    yield client
    await client.close()
