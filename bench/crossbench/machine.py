"""A description of the machine and software a run measured, for the report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(repo: Path) -> str | None:
    commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"])
    if commit is None or not re.fullmatch(r"[0-9a-f]+", commit):
        return None
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return commit + (" (src/ modified)" if dirty else "")


def _relative(path: Path, repo: Path) -> str:
    """`path` relative to the repository when it lies inside it (the project's `.venv`): reports name no
    directory of the machine that made them."""
    try:
        return str(path.relative_to(repo.resolve()))
    except ValueError:
        return str(path)


def describe(repo: Path, litellm: str | None) -> dict[str, Any]:
    nginx = _first_line(["nginx", "-v"]) or ""
    wrk = _first_line(["wrk", "-v"]) or ""
    wrk_version = re.search(r"wrk (\S+)", wrk)
    postgres = _first_line(["psql", "postgresql://postgres@127.0.0.1:5432/test", "-Atc", "show server_version"])
    redis = _first_line(["redis-cli", "-h", "127.0.0.1", "INFO", "server"])
    redis_version = None
    if redis is not None:
        info = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"], capture_output=True, text=True)
        found = re.search(r"redis_version:(\S+)", info.stdout)
        redis_version = found.group(1) if found else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "crossroads": _version("crossroads"),
        "crossroads_commit": _git(repo),
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "litellm": litellm,
        "nginx": nginx.split("/", 1)[1] if "/" in nginx else nginx or None,
        "wrk": wrk_version.group(1) if wrk_version else wrk or None,
        "postgresql": postgres if postgres and postgres[:1].isdigit() else None,
        "redis": redis_version,
        "executable": _relative(Path(sys.executable), repo),
    }
