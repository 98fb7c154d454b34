"""A small load generator for what wrk 4 cannot do: a fixed request rate, and thousands of staggered streams.

Debian's wrk is wrk 4: closed loop only (each connection sends its next request when the previous reply has
ended), and its Lua `delay()` only adds think time between a reply and the next request on that connection
— a slow reply still holds back every request queued behind it, so a "rate" made that way is not a rate and
latency is under-reported (coordinated omission). This generator schedules requests by the clock instead:

``rate``  open loop: request *i* is due at ``start + i / rate`` and is sent then whether or not earlier
          replies have arrived, over a pool of keep-alive connections that grows as needed up to a cap
          (1024); past the cap requests queue here, and that wait counts as latency. Latency runs from
          the moment the generator dispatches the request, which never waits for the target; how late
          dispatch was against the due time (the event loop's timers tick in milliseconds) is reported
          separately as `send_lateness_us`, and a run whose lateness grows means the generator, not
          the target, was the limit.
``hold``  N concurrent streams: N workers start evenly spread over a ramp, and each sends its next request
          as soon as its previous reply has ended, so N requests are open at every moment without the
          thundering herd of N connections starting at the same instant.

It runs on uvloop with one aiohttp ClientSession and prints one JSON object. The suite pins it to the load
core (`taskset -c 1`), like wrk and the mock.

    python -m crossbench.loadgen rate --url URL --body FILE --rate 2000 --duration 5
    python -m crossbench.loadgen hold --url URL --body FILE --streams 2000 --ramp 4 --duration 8
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from typing import Any

import aiohttp
import uvloop


def percentiles(values: list[float]) -> dict[str, float]:
    """Latency summary in microseconds (nearest-rank percentiles)."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] * 1e6

    return {"min": ordered[0] * 1e6, "mean": sum(ordered) / n * 1e6, "max": ordered[-1] * 1e6,
            "p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "p999": rank(0.999)}


class Client:
    def __init__(self, url: str, body: bytes, key: str | None, timeout: float, connections: int) -> None:
        self.url = url
        self.connections = connections
        self.body = body
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=120)
        self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, auto_decompress=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def call(self) -> str | None:
        """One request, its reply read to the end; None when it succeeded, else what went wrong."""
        assert self.session is not None
        try:
            async with self.session.post(self.url, data=self.body, headers=self.headers) as reply:
                data = await reply.read()
                if not 200 <= reply.status < 300:
                    return f"status {reply.status}"
                if reply.content_type == "text/event-stream" and b"[DONE]" not in data[-64:]:
                    return "stream ended without [DONE]"
                return None
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return type(exc).__name__
        except OSError as exc:
            return type(exc).__name__


async def run_rate(client: Client, rate: float, duration: float, warmup: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    interval = 1.0 / rate
    skip = int(warmup * rate)
    total = skip + int(duration * rate)
    latencies: list[float] = []
    lateness: list[float] = []
    errors: dict[str, int] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def one(sent: float, measured: bool) -> None:
        problem = await client.call()
        if measured:
            if problem is None:
                latencies.append(clock() - sent)
            else:
                errors[problem] = errors.get(problem, 0) + 1

    start = clock() + 0.05
    i = 0
    while i < total:
        now = clock()
        due = start + i * interval
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < total and start + i * interval <= now:
            due = start + i * interval
            if i >= skip:
                lateness.append(now - due)
            task = loop.create_task(one(now, i >= skip))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
    sent_end = clock()
    if tasks:
        await asyncio.wait(set(tasks), timeout=client.timeout.total)
    unfinished = len(tasks)
    if unfinished:
        errors["unfinished"] = unfinished
    measured_span = sent_end - (start + skip * interval)
    return {
        "mode": "rate", "rate": rate, "duration_s": duration, "warmup_s": warmup,
        "sent": total - skip, "ok": len(latencies), "errors": errors,
        "achieved_rps": len(latencies) / measured_span if measured_span > 0 else 0.0,
        "latency_us": percentiles(latencies),
        "send_lateness_us": percentiles(lateness),
    }


async def run_hold(client: Client, streams: int, ramp: float, duration: float) -> dict[str, Any]:
    clock = time.perf_counter
    begin = clock() + 0.05
    measure_from = begin + ramp
    measure_to = measure_from + duration
    latencies: list[float] = []
    errors: dict[str, int] = {}
    completed = 0
    open_now = 0
    open_samples: list[int] = []

    async def worker(k: int) -> None:
        nonlocal open_now, completed
        await asyncio.sleep(max(0.0, begin + ramp * k / streams - clock()))
        while True:
            started = clock()
            if started >= measure_to:
                return
            open_now += 1
            problem = await client.call()
            open_now -= 1
            if problem is None:
                completed += 1
                if started >= measure_from:
                    latencies.append(clock() - started)
            else:
                # Every failure counts, in the ramp too; back off so as not to spin on a refusing target.
                errors[problem] = errors.get(problem, 0) + 1
                await asyncio.sleep(0.05)

    async def sampler() -> None:
        while clock() < measure_to:
            if clock() >= measure_from:
                open_samples.append(open_now)
            await asyncio.sleep(0.1)

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(worker(k) for k in range(streams)))
    await sampling
    return {
        "mode": "hold", "streams": streams, "ramp_s": ramp, "duration_s": duration,
        "ok": len(latencies), "completed": completed, "errors": errors,
        "achieved_rps": len(latencies) / duration,
        "open_min": min(open_samples, default=0), "open_max": max(open_samples, default=0),
        "latency_us": percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="crossbench.loadgen", description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("rate", "hold"):
        mode = modes.add_parser(name)
        mode.add_argument("--url", required=True)
        mode.add_argument("--body", required=True, help="file holding the request body")
        mode.add_argument("--key", help="API key (Authorization: Bearer)")
        mode.add_argument("--duration", type=float, required=True, help="seconds measured")
        mode.add_argument("--timeout", type=float, default=60.0, help="seconds before a request counts as failed")
        mode.add_argument("--connections", type=int, default=0,
                          help="most connections open at once (default: 1024 for rate, --streams for hold)")
        if name == "rate":
            mode.add_argument("--rate", type=float, required=True, help="requests per second")
            mode.add_argument("--warmup", type=float, default=1.0, help="seconds at the rate before measuring")
        else:
            mode.add_argument("--streams", type=int, required=True, help="requests open at once")
            mode.add_argument("--ramp", type=float, required=True, help="seconds over which workers start")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.body, "rb") as fh:
        body = fh.read()
    connections = args.connections or (1024 if args.mode == "rate" else args.streams)
    # Short runs: a garbage-collector pause here would show up as the target's latency.
    gc.collect()
    gc.freeze()
    gc.disable()

    async def go() -> dict[str, Any]:
        async with Client(args.url, body, args.key, args.timeout, connections) as client:
            if args.mode == "rate":
                return await run_rate(client, args.rate, args.duration, args.warmup)
            return await run_hold(client, args.streams, args.ramp, args.duration)

    json.dump(uvloop.run(go()), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
