"""The recorder's flush gives prometheus_client exactly what observing each value would have."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from crossroads.metrics.families import DURATION_BUCKETS, FAMILIES
from crossroads.metrics.recorder import _Histogram


def test_many_observations_flushed_at_once_equal_each_observed() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(2.0) for _ in range(500)] + list(DURATION_BUCKETS) + [0.0, 1e6]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    each = Histogram("d_seconds", "d", buckets=DURATION_BUCKETS, registry=one)
    flushed = Histogram("d_seconds", "d", buckets=DURATION_BUCKETS, registry=bulk)
    pending = _Histogram(DURATION_BUCKETS)
    for value in values:
        each.observe(value)
        pending.add(value)
    pending.into(flushed)

    def lines(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert lines(one) == lines(bulk)


def test_names_follow_prometheus_conventions() -> None:
    for family in FAMILIES:
        assert family.name == family.name.lower() and not family.name.endswith("_total")
        if family.kind == "histogram" and "token" not in family.name:
            assert family.name.endswith("_seconds")
        assert all(label.isidentifier() and label != "le" for label in family.labels)
