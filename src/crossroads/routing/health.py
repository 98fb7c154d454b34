"""Live health of every endpoint: outcomes, time to first token and throughput, in rolling windows.

Failures are counted as OpenRouter counts them for uptime: 401, 402, 404, 5xx, timeouts, broken or
malformed replies and mid-stream errors are failures; 400 and 413 (the caller's fault) are not counted at
all; 429 is counted separately (rate limited is not down).

Routing asks `recently_failing()` — OpenRouter's "significant outage in the last 30 seconds" — which we
define as: at least `OUTAGE_MIN_FAILURES` failures in the window, making up at least `OUTAGE_MIN_RATIO` of
its counted attempts. One stray failure among many successes does not demote an endpoint; two failures in a
row with no success does.

Multi-process seam: `Health` is the in-process store, and `record()` is the one door outcomes come in by.
With several gateway processes, `routing/health_sync.py` collects what `record()` puts in `outbox`,
publishes it through Redis in batches and folds the other processes' outcomes in with `apply()`, so every
process routes on the same figures. Times are wall-clock seconds so they compare across processes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

OUTAGE_WINDOW: Final = 30.0
OUTAGE_MIN_FAILURES: Final = 2
OUTAGE_MIN_RATIO: Final = 0.25
#: Bucket width for uptime counts; windows of 5 min, 30 min and 1 day are sums of buckets.
BUCKET_SECONDS: Final = 10
DAY_BUCKETS: Final = 86400 // BUCKET_SECONDS
#: Percentile samples kept per endpoint (latency, throughput), newest first out after 30 minutes.
MAX_SAMPLES: Final = 2000
SAMPLE_WINDOW: Final = 1800.0
#: OpenRouter computes uptime only after enough traffic; below this, `uptime_*` are null.
MIN_UPTIME_SAMPLES: Final = 1


def counts_as_failure(status: int) -> bool | None:
    """True: a failure; False: a success; None: not counted for uptime (caller errors, rate limits)."""
    if status < 400:
        return False
    if status in (400, 413, 422, 429):
        return None
    return True


class Outcome(NamedTuple):
    """One attempt's result; crosses to other processes as a JSON array."""

    endpoint: str
    status: int  # HTTP-like: 200 ok, 429, 5xx, 504 timeout, 502 broken reply
    at: float
    ttft: float | None = None  # seconds to first token
    tokens_per_second: float | None = None


@dataclass(slots=True)
class _Bucket:
    start: int
    ok: int = 0
    failed: int = 0
    limited: int = 0


class _Series:
    __slots__ = ("buckets", "recent", "recent_failed", "recent_total", "samples")

    def __init__(self) -> None:
        self.buckets: deque[_Bucket] = deque()
        #: The outage window as one-second buckets [second, counted, failed], with running sums, so routing
        #: asks "recently failing?" in constant time however busy the endpoint is.
        self.recent: deque[list[int]] = deque()
        self.recent_total = 0
        self.recent_failed = 0
        self.samples: deque[tuple[float, float | None, float | None]] = deque(maxlen=MAX_SAMPLES)

    def count_recent(self, at: float, failed: bool) -> None:
        second = int(at)
        recent = self.recent
        if recent and recent[-1][0] == second:
            bucket = recent[-1]
        else:
            bucket = [second, 0, 0]
            recent.append(bucket)
        bucket[1] += 1
        self.recent_total += 1
        if failed:
            bucket[2] += 1
            self.recent_failed += 1

    def prune_recent(self, now: float) -> None:
        horizon = now - OUTAGE_WINDOW
        recent = self.recent
        while recent and recent[0][0] + 1 <= horizon:
            _, total, failed = recent.popleft()
            self.recent_total -= total
            self.recent_failed -= failed


@dataclass(frozen=True, slots=True)
class Snapshot:
    uptime_5m: float | None
    uptime_30m: float | None
    uptime_1d: float | None
    latency: dict[str, float] | None  # ttft percentiles, seconds
    throughput: dict[str, float] | None  # tokens/s percentiles
    recent_failures: int
    recent_attempts: int
    rate_limited_5m: int


@dataclass(frozen=True, slots=True)
class History:
    """An endpoint's recent figures as series for sparklines, oldest first (None where nothing was counted):
    median time to first token (seconds) and median throughput (tokens/s) per minute over the last 30
    minutes, and uptime (%) per hour over the last day."""

    ttft: list[float | None]
    throughput: list[float | None]
    uptime: list[float | None]


HISTORY_MINUTES: Final = 30
HISTORY_HOURS: Final = 24


class Health:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._series: dict[str, _Series] = {}
        #: When set (by a sync), every outcome recorded here is also appended for other processes.
        self.outbox: list[Outcome] | None = None

    def now(self) -> float:
        return self._clock()

    def record(self, outcome: Outcome) -> None:
        self.apply(outcome)
        if self.outbox is not None:
            self.outbox.append(outcome)

    def apply(self, outcome: Outcome) -> None:
        """Count an outcome (recorded here, or by another process)."""
        series = self._series.get(outcome.endpoint)
        if series is None:
            series = self._series[outcome.endpoint] = _Series()
        failed = counts_as_failure(outcome.status)
        start = int(outcome.at // BUCKET_SECONDS) * BUCKET_SECONDS
        buckets = series.buckets
        if not buckets or buckets[-1].start < start:
            buckets.append(_Bucket(start))
            while buckets[0].start <= start - 86400:
                buckets.popleft()
        bucket = buckets[-1] if buckets[-1].start == start else _find(buckets, start)
        if bucket is not None:
            if failed is None:
                if outcome.status == 429:
                    bucket.limited += 1
            elif failed:
                bucket.failed += 1
            else:
                bucket.ok += 1
        if failed is not None:
            series.count_recent(outcome.at, failed)
        if failed is False and (outcome.ttft is not None or outcome.tokens_per_second is not None):
            series.samples.append((outcome.at, outcome.ttft, outcome.tokens_per_second))

    def recently_failing(self, endpoint: str) -> bool:
        series = self._series.get(endpoint)
        if series is None:
            return False
        series.prune_recent(self._clock())
        failures = series.recent_failed
        return failures >= OUTAGE_MIN_FAILURES and failures >= OUTAGE_MIN_RATIO * series.recent_total

    def percentile(self, endpoint: str, metric: str, q: float, window: float = 300.0) -> float | None:
        """A percentile of `ttft` or `throughput` over the last `window` seconds; None without data."""
        series = self._series.get(endpoint)
        if series is None:
            return None
        index = 1 if metric == "ttft" else 2
        horizon = self._clock() - window
        values: list[float] = sorted(v for s in series.samples if s[0] >= horizon and (v := s[index]) is not None)
        return _pick(values, q) if values else None

    def snapshot(self, endpoint: str) -> Snapshot:
        series = self._series.get(endpoint)
        if series is None:
            return Snapshot(None, None, None, None, None, 0, 0, 0)
        now = self._clock()
        series.prune_recent(now)
        horizon = now - SAMPLE_WINDOW
        samples = [s for s in series.samples if s[0] >= horizon]
        ttfts = sorted(s[1] for s in samples if s[1] is not None)
        rates = sorted(s[2] for s in samples if s[2] is not None)
        return Snapshot(
            uptime_5m=_uptime(series.buckets, now - 300),
            uptime_30m=_uptime(series.buckets, now - 1800),
            uptime_1d=_uptime(series.buckets, now - 86400),
            latency=_percentiles(ttfts),
            throughput=_percentiles(rates),
            recent_failures=series.recent_failed,
            recent_attempts=series.recent_total,
            rate_limited_5m=sum(b.limited for b in series.buckets if b.start >= now - 300),
        )

    def history(self, endpoint: str) -> History:
        """Computed on demand from what routing keeps anyway (percentile samples, uptime buckets), so
        nothing is added to the request path."""
        series = self._series.get(endpoint)
        if series is None:
            return History([None] * HISTORY_MINUTES, [None] * HISTORY_MINUTES, [None] * HISTORY_HOURS)
        now = self._clock()
        first_minute = int(now // 60) - HISTORY_MINUTES + 1
        ttfts: list[list[float]] = [[] for _ in range(HISTORY_MINUTES)]
        rates: list[list[float]] = [[] for _ in range(HISTORY_MINUTES)]
        for at, ttft, rate in series.samples:
            slot = int(at // 60) - first_minute
            if 0 <= slot < HISTORY_MINUTES:
                if ttft is not None:
                    ttfts[slot].append(ttft)
                if rate is not None:
                    rates[slot].append(rate)
        first_hour = int(now // 3600) - HISTORY_HOURS + 1
        ok = [0] * HISTORY_HOURS
        failed = [0] * HISTORY_HOURS
        for bucket in series.buckets:
            slot = bucket.start // 3600 - first_hour
            if 0 <= slot < HISTORY_HOURS:
                ok[slot] += bucket.ok
                failed[slot] += bucket.failed
        return History(
            ttft=[round(_pick(sorted(v), .5), 4) if v else None for v in ttfts],
            throughput=[round(_pick(sorted(v), .5), 4) if v else None for v in rates],
            uptime=[round(100.0 * o / (o + f), 2) if o + f else None for o, f in zip(ok, failed, strict=True)],
        )

    def endpoints(self) -> Iterable[str]:
        return self._series.keys()


def _find(buckets: deque[_Bucket], start: int) -> _Bucket | None:
    for bucket in reversed(buckets):
        if bucket.start == start:
            return bucket
        if bucket.start < start:
            break
    return None  # older than anything kept: too old to matter


def _uptime(buckets: Iterable[_Bucket], since: float) -> float | None:
    ok = failed = 0
    for bucket in buckets:
        if bucket.start + BUCKET_SECONDS > since:
            ok += bucket.ok
            failed += bucket.failed
    total = ok + failed
    if total < MIN_UPTIME_SAMPLES:
        return None
    return round(100.0 * ok / total, 2)


def _pick(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {name: round(_pick(values, q), 4) for name, q in (("p50", .5), ("p75", .75), ("p90", .9), ("p99", .99))}
