"""The catalog's list of wire formats is the only one: each has its row, and no other catalog module names one."""

from __future__ import annotations

import ast
from pathlib import Path

from crossroads.catalog import wire_formats
from crossroads.catalog.wire_formats import DEFAULT, SPECS, WIRE_FORMATS

CATALOG = Path(wire_formats.__file__).parent


def test_every_wire_format_has_its_row() -> None:
    assert list(SPECS) == list(WIRE_FORMATS)
    assert DEFAULT in WIRE_FORMATS
    assert len(set(WIRE_FORMATS)) == len(WIRE_FORMATS) == 6


def test_no_other_catalog_module_names_a_wire_format() -> None:
    offenders = []
    for path in CATALOG.glob("*.py"):
        if path.name == "wire_formats.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in WIRE_FORMATS:
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not offenders
