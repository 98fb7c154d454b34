"""Run the load generators on the load core and collect what they report and what they cost.

Both wrk and crossbench.loadgen are started with `taskset -c 1`; their own CPU time comes from the kernel's
accounting of finished children (`os.times()`), so the suite can tell when the load core, rather than the
system under test, was the limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOAD_CPU = 1
BENCH_DIR = Path(__file__).resolve().parent.parent
WRK_SCRIPT = BENCH_DIR / "wrk" / "post.lua"


@dataclass
class Run:
    """What a load generator printed (parsed), and the CPU seconds it used."""

    result: dict[str, Any]
    cpu_seconds: float


def _run(command: list[str], env: dict[str, str] | None, marker: str | None, timeout: float) -> Run:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"{command[3]} did not finish within {timeout:.0f} s") from None
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}): "
                           f"{err.decode(errors='replace')[-800:]}{text[-800:]}")
    line = next((x for x in text.splitlines() if marker is None or x.startswith(marker)), None)
    if line is None:
        raise RuntimeError(f"no result from {' '.join(command[:4])}: {text[-800:]}")
    return Run(json.loads(line[len(marker):] if marker else line), 0.0)


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def wrk(url: str, body: Path, key: str | None, connections: int, seconds: float, timeout: float = 30.0) -> Run:
    """Closed loop: `connections` connections, each sending its next request when the reply has ended."""
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": key or ""}
    command = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
               f"--timeout={timeout:g}s", "-s", str(WRK_SCRIPT), url]
    before = _children_cpu()
    run = _run(command, env, "BENCH_JSON ", seconds + timeout + 60)
    run.cpu_seconds = _children_cpu() - before
    return run


def loadgen(mode: str, url: str, body: Path, key: str | None, *options: str, limit: float) -> Run:
    """crossbench.loadgen in `mode` ("rate" or "hold") with the given extra options."""
    command = ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m", "crossbench.loadgen", mode,
               "--url", url, "--body", str(body), *(["--key", key] if key else []), *options]
    env = {**os.environ, "PYTHONPATH": str(BENCH_DIR)}
    before = _children_cpu()
    run = _run(command, env, None, limit)
    run.cpu_seconds = _children_cpu() - before
    return run
