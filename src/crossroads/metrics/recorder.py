"""What the request path records, and how it reaches prometheus_client.

A prometheus_client value in multiprocess mode costs about as much to increment as a tenth of a whole
request (a lock, a pid check, a write into a memory-mapped file), and a request touches a dozen of them.
So the request path never touches one: it adds to plain counters of this process, keyed by the labels it
already knows (`settled`, `refused`, `attempt`, and the two gauges `in_flight` and `streams`), and
`flush()` moves what accumulated into prometheus_client's values once a second, and before each scrape
this process answers — one increment per label set and bucket, however many requests there were. The
other processes' figures in a scrape are therefore at most a second old.

Requests are recorded where their outcome is already known: when their `Tab` settles (admitted requests,
streamed or not, served or failed, whatever API), or when they are refused before admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from crossroads.errors import ConfigError, CrossroadsError, PaymentRequired, RateLimited
from crossroads.metrics import directory
from crossroads.metrics.families import DURATION_BUCKETS, TOKEN_BUCKETS, TTFT_BUCKETS, build
from crossroads.routing.health import counts_as_failure

if TYPE_CHECKING:
    from crossroads.ledger.accounting import Tab

log = logging.getLogger("crossroads.metrics")

#: Seconds between two flushes of this process's counters into the shared view.
FLUSH_SECONDS: Final = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _Histogram:
    """Observations since the last flush: a count per bucket (the last one is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # Prometheus buckets are `value <= le`
        self.total += value

    def into(self, child: Histogram) -> None:
        """Add these observations to a prometheus_client histogram. It observes one value at a time; it keeps
        one (non-cumulative) value per bucket and one for the sum, so n observations in a bucket are one
        increment of n."""
        buckets: list[Any] = child._buckets
        for index, count in enumerate(self.counts):
            if count:
                buckets[index].inc(count)
        child._sum.inc(self.total)

    @property
    def empty(self) -> bool:
        return not any(self.counts)


class _Series:
    """What one (api, model, provider, status) accumulated since the last flush."""

    __slots__ = ("duration", "input", "nanos", "output", "requests", "ttft")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.ttft = _Histogram(TTFT_BUCKETS)
        self.input = _Histogram(TOKEN_BUCKETS)
        self.output = _Histogram(TOKEN_BUCKETS)
        self.nanos = 0


class Metrics:
    """One process's metrics. `start()` runs the flushes; `exposition()` answers a scrape."""

    def __init__(self) -> None:
        self.directory = directory.current()
        if self.directory is not None:
            if not os.path.isdir(self.directory):
                raise ConfigError(f"{directory.VARIABLE}={self.directory} is not a directory")
            if values.ValueClass is values.MutexValue:
                raise ConfigError(f"{directory.VARIABLE} was set after prometheus_client was imported")
        self.registry = CollectorRegistry()
        families = build(self.registry)
        self._requests: Counter = families["crossroads_requests"]  # type: ignore[assignment]
        self._duration: Histogram = families["gen_ai_server_request_duration_seconds"]  # type: ignore[assignment]
        self._ttft: Histogram = families["gen_ai_server_time_to_first_token_seconds"]  # type: ignore[assignment]
        self._tokens: Histogram = families["gen_ai_client_token_usage"]  # type: ignore[assignment]
        self._cost: Counter = families["crossroads_cost_usd"]  # type: ignore[assignment]
        self._attempts: Counter = families["crossroads_upstream_attempts"]  # type: ignore[assignment]
        self._refusals: Counter = families["crossroads_limit_refusals"]  # type: ignore[assignment]
        self._in_flight: Gauge = families["crossroads_requests_in_flight"]  # type: ignore[assignment]
        self._streams: Gauge = families["crossroads_streams_open"]  # type: ignore[assignment]
        self._backlog: Gauge = families["crossroads_spool_backlog_bytes"]  # type: ignore[assignment]
        self._lag: Gauge = families["crossroads_shipper_lag_seconds"]  # type: ignore[assignment]
        self._rss: Gauge = families["process_resident_memory_bytes"]  # type: ignore[assignment]
        self._cpu: Counter = families["process_cpu_seconds"]  # type: ignore[assignment]
        self._series: dict[tuple[str, str, str, int], _Series] = {}
        self._attempt_counts: dict[tuple[str, str, str], int] = {}
        self._refusal_counts: dict[tuple[str, str], int] = {}
        self._cpu_seen = 0.0
        self._task: asyncio.Task[None] | None = None
        #: Inference requests being served, and streamed responses under way, in this process.
        self.in_flight = 0
        self.streams = 0
        #: The ledger's (backlog bytes, lag seconds), read at each flush.
        self.ledger: Callable[[], tuple[int, float]] | None = None

    # -- the request path ----------------------------------------------------------------------------------

    def settled(self, tab: Tab) -> None:
        """An admitted request ended (its tab settled)."""
        generation = tab.generation
        endpoint = generation.endpoint
        provider = endpoint.provider.name if endpoint is not None else ""
        key = (tab.api, generation.model, provider, generation.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.requests += 1
        series.duration.add(time.monotonic() - tab.clock)
        if endpoint is not None:
            if generation.latency_ms is not None:
                series.ttft.add(generation.latency_ms / 1000)
            usage = generation.usage
            if usage is not None:
                series.input.add(usage.prompt_tokens)
                series.output.add(usage.completion_tokens)
            if tab.charge is not None:
                series.nanos += tab.charge.nanos

    def refused(self, api: str, error: CrossroadsError, arrived: float) -> None:
        """A request was answered with `error` before it was admitted (bad request, key, model, limits)."""
        key = (api, "", "", error.code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.requests += 1
        series.duration.add(time.monotonic() - arrived)
        limit = "rate" if isinstance(error, RateLimited) else "credit" if isinstance(error, PaymentRequired) else None
        if limit is not None:
            counts = self._refusal_counts
            counts[api, limit] = counts.get((api, limit), 0) + 1

    def attempt(self, provider: str, model: str, status: int) -> None:
        """One attempt at a provider ended with `status` (as routing health records it)."""
        failed = counts_as_failure(status)
        outcome = "success" if failed is False else "failure" if failed else \
            "rate_limited" if status == 429 else "not_counted"
        counts = self._attempt_counts
        key = (provider, model, outcome)
        counts[key] = counts.get(key, 0) + 1

    # -- into prometheus_client ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Move what accumulated since the last flush into prometheus_client's values."""
        series, self._series = self._series, {}
        attempts, self._attempt_counts = self._attempt_counts, {}
        refusals, self._refusal_counts = self._refusal_counts, {}
        for (api, model, provider, status), s in series.items():
            self._requests.labels(api, model, provider, str(status)).inc(s.requests)
            s.duration.into(self._duration.labels(api, model, provider))
            if not s.ttft.empty:
                s.ttft.into(self._ttft.labels(api, model, provider))
            if not s.input.empty:
                s.input.into(self._tokens.labels(api, model, provider, "input"))
                s.output.into(self._tokens.labels(api, model, provider, "output"))
            if s.nanos:
                self._cost.labels(api, model, provider).inc(s.nanos / 1e9)
        for labels, count in attempts.items():
            self._attempts.labels(*labels).inc(count)
        for (api, limit), count in refusals.items():
            self._refusals.labels(api, limit).inc(count)
        self._in_flight.set(self.in_flight)
        self._streams.set(self.streams)
        if self.ledger is not None:
            backlog, lag = self.ledger()
            self._backlog.set(backlog)
            self._lag.set(lag)
        self._process()

    def _process(self) -> None:
        cpu = time.process_time()
        if cpu > self._cpu_seen:
            self._cpu.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu
        try:
            with open("/proc/self/statm", "rb") as statm:
                self._rss.set(int(statm.read().split()[1]) * _PAGE)
        except OSError:  # not Linux: the peak instead
            import resource

            self._rss.set(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

    async def exposition(self) -> bytes:
        """The text format of every process's metrics (this one's flushed first)."""
        self.flush()
        return await asyncio.to_thread(self._collect)

    def _collect(self) -> bytes:
        if self.directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self.directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    # -- lifetime --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._flushing(), name="crossroads-metrics")

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:
                log.warning("could not flush metrics", exc_info=True)

    async def close(self) -> None:
        """Flush what remains; a process that stops drops out of the live gauges."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.in_flight = self.streams = 0
        self.flush()
        if self.directory is not None:
            directory.process_dead(os.getpid(), self.directory)


class NoMetrics(Metrics):
    """`CROSSROADS_METRICS=off`: the request path's calls do nothing, and nothing is built."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.streams = 0
        self.ledger = None

    def settled(self, tab: Tab) -> None:
        return None

    def refused(self, api: str, error: CrossroadsError, arrived: float) -> None:
        return None

    def attempt(self, provider: str, model: str, status: int) -> None:
        return None

    def flush(self) -> None:
        return None

    def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


__all__ = ["FLUSH_SECONDS", "Metrics", "NoMetrics"]
