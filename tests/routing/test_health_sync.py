"""Endpoint health shared between processes through Redis or a workers' broker: an outage seen by one is
seen by all."""

from __future__ import annotations

import asyncio

import pytest

from crossroads.routing.health import Health, Outcome
from crossroads.routing.health_sync import HealthSync
from tests.redis_support import shared_links


@pytest.mark.parametrize("kind", ["redis", "broker"])
async def test_failures_recorded_by_one_process_reach_the_other(kind: str) -> None:
    async with shared_links(kind) as connect, connect() as first, connect() as second:
        here, there = Health(), Health()
        HealthSync(first, here, interval=0.05).start()
        HealthSync(second, there, interval=0.05).start()
        await asyncio.sleep(0.1)  # both subscribed
        for _ in range(3):
            here.record(Outcome("m|p", 503, here.now()))
        there.record(Outcome("m|q", 200, there.now(), ttft=0.2, tokens_per_second=40.0))
        for _ in range(50):
            if there.recently_failing("m|p") and here.snapshot("m|q").latency:
                break
            await asyncio.sleep(0.02)
        assert there.recently_failing("m|p")
        assert here.snapshot("m|q").throughput == {"p50": 40.0, "p75": 40.0, "p90": 40.0, "p99": 40.0}
        assert here.snapshot("m|p").recent_failures == 3  # its own, not counted twice
