"""The adapter registry serves exactly the wire formats the catalog lists."""

from __future__ import annotations

from crossroads.catalog.wire_formats import WIRE_FORMATS
from crossroads.providers.registry import build_adapters


def test_one_adapter_for_each_wire_format_of_the_catalog() -> None:
    adapters = build_adapters()
    assert sorted(adapters) == sorted(WIRE_FORMATS)
    assert all(adapter.wire_format == name for name, adapter in adapters.items())
