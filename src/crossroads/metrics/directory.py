"""The directory prometheus_client's multiprocess mode keeps each process's values in.

A supervisor of several gateway processes creates a fresh directory, passes it to its workers as
`PROMETHEUS_MULTIPROC_DIR`, and calls `process_dead(pid)` when one of them exits, so the gauges of a dead
process (requests in flight, memory...) stop counting; its counters stay, as counters must. A lone
`crossroads serve` without the variable makes a private directory for itself (`private_directory`), so one
process works exactly as several do.

No module-level import of prometheus_client here: importing it fixes its mode (see `__init__`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Final

VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


def current() -> str | None:
    """The multiprocess directory of this process, if any."""
    return os.environ.get(VARIABLE) or None


@contextlib.contextmanager
def private_directory() -> Iterator[str]:
    """Make sure `PROMETHEUS_MULTIPROC_DIR` names a directory: the one given, or a fresh private one that is
    removed on exit. Call it before prometheus_client is imported."""
    given = current()
    if given is not None:
        yield given
        return
    path = tempfile.mkdtemp(prefix="crossroads-metrics-")
    os.environ[VARIABLE] = path
    try:
        yield path
    finally:
        os.environ.pop(VARIABLE, None)
        shutil.rmtree(path, ignore_errors=True)


def process_dead(pid: int, path: str | None = None) -> None:
    """Tell the metrics that gateway process `pid` is gone: its live gauges are dropped from the view (a
    supervisor calls this when a worker exits; a gateway stopping cleanly does it for itself)."""
    from prometheus_client import multiprocess

    directory = path or current()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


__all__ = ["VARIABLE", "current", "private_directory", "process_dead"]
