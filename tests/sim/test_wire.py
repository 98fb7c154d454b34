"""Helpers every simulated wire format's answers share: retry-after seconds and interleaved choice streams."""

from __future__ import annotations

from crossroads.sim.wire import interleave, retry_after_header, seconds


def test_seconds_as_providers_write_them() -> None:
    assert seconds(2.0) == "2"
    assert seconds(0.5) == "0.5"
    assert seconds(120) == "120"


def test_retry_after_header_only_when_asked() -> None:
    assert retry_after_header(None) == {}
    assert retry_after_header(0) == {"retry-after": "0"}
    assert retry_after_header(2.5) == {"retry-after": "2.5"}


def test_one_stream_passes_through() -> None:
    assert list(interleave([iter([1, 2, 3])])) == [1, 2, 3]


def test_streams_take_turns_until_each_ends() -> None:
    streams = [iter(["a1", "a2", "a3"]), iter(["b1"]), iter(["c1", "c2"])]
    assert list(interleave(streams)) == ["a1", "b1", "c1", "a2", "c2", "a3"]
