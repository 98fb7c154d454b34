"""Project rules that a test can hold: typed and linted code, and provider names only where they belong."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from crossroads.catalog.loader import load

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "crossroads"
#: The only places that may name a provider: adapters, the catalog and the simulators.
PROVIDER_AWARE = {"providers", "catalog", "sim"}


def test_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provider_names_live_only_in_providers_catalog_and_sim() -> None:
    catalog = load([], {})
    names = {slug.lower() for slug in catalog.providers} | {p.name.lower() for p in catalog.providers.values()}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in PROVIDER_AWARE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in names:
                offenders.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert not offenders, "provider names outside providers/, catalog/, sim/:\n" + "\n".join(offenders)
