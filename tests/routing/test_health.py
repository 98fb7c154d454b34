"""Endpoint health figures after a scripted sequence of outcomes."""

from __future__ import annotations

import pytest

from crossroads.routing.health import Health, Outcome, counts_as_failure


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("status", "counted"), [
    (200, False), (400, None), (413, None), (429, None), (401, True), (402, True), (404, True), (500, True),
    (502, True), (503, True), (504, True), (529, True)])
def test_what_counts_as_a_failure(status: int, counted: bool | None) -> None:
    assert counts_as_failure(status) is counted


def test_uptime_windows_latency_and_throughput() -> None:
    clock = Clock()
    health = Health(clock)
    endpoint = "m|p"
    # An hour ago: 10 failures. Twenty minutes ago: 30 successes. Now: 9 successes, 1 failure, 5 rate limits.
    clock.now -= 3600
    for _ in range(10):
        health.record(Outcome(endpoint, 503, clock()))
    clock.now += 2400
    for i in range(30):
        health.record(Outcome(endpoint, 200, clock(), ttft=0.1 + i / 100, tokens_per_second=50 + i))
    clock.now += 1200
    for _ in range(9):
        health.record(Outcome(endpoint, 200, clock(), ttft=0.5, tokens_per_second=100))
    health.record(Outcome(endpoint, 500, clock()))
    for _ in range(5):
        health.record(Outcome(endpoint, 429, clock()))
    snapshot = health.snapshot(endpoint)
    assert snapshot.uptime_5m == 90.0  # 9 of 10 counted attempts (rate limits excluded)
    assert snapshot.uptime_30m == pytest.approx(100 * 39 / 40)
    assert snapshot.uptime_1d == pytest.approx(100 * 39 / 50)
    assert snapshot.rate_limited_5m == 5
    assert snapshot.latency is not None  # the last 30 minutes: 30 samples 0.10..0.39 s and 9 of 0.5 s
    assert (snapshot.latency["p50"], snapshot.latency["p99"]) == (0.29, 0.5)
    assert snapshot.throughput is not None and snapshot.throughput["p99"] == 100
    assert not health.recently_failing(endpoint)  # one failure in ten is not an outage


def test_an_outage_starts_and_ends_with_the_window() -> None:
    clock = Clock()
    health = Health(clock)
    health.record(Outcome("e", 503, clock()))
    assert not health.recently_failing("e")
    health.record(Outcome("e", 502, clock()))
    assert health.recently_failing("e")
    clock.now += 31
    assert not health.recently_failing("e")


def test_no_data_means_no_figures() -> None:
    snapshot = Health(Clock()).snapshot("unknown")
    assert snapshot.uptime_5m is None and snapshot.latency is None and snapshot.throughput is None


def test_outcomes_recorded_here_are_offered_to_other_processes() -> None:
    health = Health(Clock())
    health.outbox = []
    outcome = Outcome("e", 200, 1.0)
    health.record(outcome)
    health.apply(Outcome("e", 500, 1.0))  # another process's: counted, not re-shared
    assert health.outbox == [outcome]


def test_history_for_sparklines() -> None:
    clock = Clock()
    clock.now = 36_000.0  # on the hour
    health = Health(clock)
    endpoint = "m|p"
    # Two hours ago: one failure and one success; ten minutes ago: slow; now: fast.
    clock.now -= 7200
    health.record(Outcome(endpoint, 503, clock()))
    health.record(Outcome(endpoint, 200, clock(), ttft=0.2, tokens_per_second=10))
    clock.now += 7200 - 600
    health.record(Outcome(endpoint, 200, clock(), ttft=1.0, tokens_per_second=20))
    clock.now += 600
    health.record(Outcome(endpoint, 200, clock(), ttft=0.1, tokens_per_second=80))
    health.record(Outcome(endpoint, 200, clock(), ttft=0.3, tokens_per_second=60))
    history = health.history(endpoint)
    assert len(history.ttft) == len(history.throughput) == 30 and len(history.uptime) == 24
    assert history.ttft[-1] == 0.1 and history.throughput[-1] == 60  # the lower median of two
    assert history.ttft[-11] == 1.0 and history.ttft[-12] is None
    assert history.uptime[-1] == 100.0 and history.uptime[-3] == 50.0 and history.uptime[-2] == 100.0
    assert health.history("unknown").uptime == [None] * 24
