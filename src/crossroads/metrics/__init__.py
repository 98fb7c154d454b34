"""Prometheus metrics for `GET /metrics`, one view across every gateway process.

    families.py    the metric families: names, labels, buckets (one declarative table)
    recorder.py    `Metrics`: what the request path records (plain in-process counters) and their flush into
                   prometheus_client's values, and the exposition
    directory.py   the multiprocess directory: a private one for a lone `crossroads serve`, and
                   `process_dead()` for a supervisor whose worker died

prometheus_client runs in multiprocess mode whenever `PROMETHEUS_MULTIPROC_DIR` is set: every process
writes its values to memory-mapped files in that directory, and whichever process answers `/metrics` reads
them all. The mode is chosen when prometheus_client is first imported, so the variable must be set before
(`crossroads serve` does so first thing); nothing in this package's `__init__` or `directory.py` imports it.
"""

from crossroads.metrics.directory import private_directory, process_dead

__all__ = ["private_directory", "process_dead"]
