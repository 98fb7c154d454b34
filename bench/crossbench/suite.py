"""The benchmark run: start the mock, measure every target in every scenario, write the results.

Order of a run:

1. The nginx mock starts on the load core (CPU 1); request bodies are written to the work directory.
2. Start-up: each target is started alone against the instant mock, several times; the time from spawn to
   the first served chat completion and the RSS one second later (idle) are recorded, then it is stopped.
3. Scenarios, one after the other. For each, every target is started against the scenario's mock profile
   and warmed up; then for each concurrency level the targets take turns (the order rotates from level to
   level), each for one measured cell; then the targets are stopped. Comparisons are therefore always
   between cells measured minutes apart in the same run, never between runs.
4. In the instant non-stream scenario, an open-loop search per target for the highest fixed request rate
   whose p99 latency stays under 10 ms.
5. The results go to bench/results/ (JSON and markdown) and, for a full run, into docs/benchmarks.md.

The system under test runs on CPU 0 (`taskset -c 0`); the mock, wrk, the Python load generator and this
process stay on CPU 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossbench import fixtures, machine, procstat, report, runners
from crossbench.dashboard import DashboardPoller
from crossbench.mock import Mock
from crossbench.targets import (
    LITELLM_VERSION,
    TARGET_CPU,
    Crossroads,
    Direct,
    LiteLLM,
    Passthrough,
    Target,
    TargetUnavailable,
    ensure_litellm,
    litellm_version,
)

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
RESULTS = BENCH_DIR / "results"
DOCS = REPO / "docs" / "benchmarks.md"

TARGETS = ("direct", "passthrough", "crossroads", "crossroads-pg", "litellm", "passthrough-2", "crossroads-2w")
#: What a run without --targets measures. The two-process targets span both CPUs (shared with the load
#: generator and the mock), so they are asked for by name: `--targets passthrough,passthrough-2,crossroads,
#: crossroads-2w` gives the 1 → 2 worker scaling of Crossroads next to that of the passthrough.
DEFAULT_TARGETS = TARGETS[:5]
#: The targets a scenario's `bound_level` cells compare, measured there in alternation.
COMPARED = ("passthrough", "crossroads")
#: Measured only when named in `--targets`: `crossroads` with its metrics off, to price them
#: (`bench/run --targets crossroads,crossroads-nometrics --scenarios nonstream`).
EXTRA_TARGETS = ("crossroads-nometrics",)

#: Open loop: the latency bound whose highest sustainable rate is searched for.
OPEN_LOOP_P99_MS = 10.0
#: The Python load generator's own ceiling on one core of the reference machine (requests/s); the search
#: never asks it for more, so a target faster than this (only `direct`) is reported as "at least".
GENERATOR_CEILING = 6000.0
#: A rate step whose dispatch ran later than this (p99) measured the generator, not the target.
MAX_SEND_LATENESS_MS = 5.0
#: A cell during which other processes used more than this share of either CPU is measured again, once,
#: unless it took longer than REMEASURE_MAX_SECONDS (an overloaded target draining thousands of streams).
INTERFERENCE = 0.15
REMEASURE_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    profile: str  # mock reply profile
    stream: bool
    large: bool = False
    levels: tuple[int, ...] = (1, 16, 64, 256)
    #: > 0: the Python generator holds this many streams open at once instead of wrk.
    hold: int = 0
    open_loop: bool = False
    in_quick: bool = False
    #: The inbound API called: `chat` (every target), `responses` or `messages` (targets that serve them).
    api: str = "chat"
    #: The request body, when it is not one of an inbound API's (the embeddings scenario's).
    body: str | None = None
    #: The model asked for (the `messages` scenarios also ask for the one served in Anthropic's format).
    model: str = fixtures.MODEL
    #: A dashboard polls the target every second during each cell (Crossroads targets only).
    dashboard: bool = False
    #: The concurrency at which Crossroads is held to a bound against passthrough: there the two are
    #: measured `Plan.rounds` times in alternation and each keeps its median run (by throughput).
    bound_level: int = 0

    @property
    def body_name(self) -> str:
        if self.body:
            return self.body
        kind = ("stream" if self.stream else "json")
        if self.api == "messages":
            return f"messages-{kind}-{self.model.rsplit('/', 1)[-1]}"
        prefix = "responses-" if self.api == "responses" else ""
        return prefix + kind + ("-large" if self.large else "")


SCENARIOS = (
    Scenario("nonstream", "Non-stream, instant upstream", "json", stream=False, open_loop=True, in_quick=True,
             bound_level=16),
    Scenario("stream", "Stream of 24 events, instant upstream", "sse", stream=True, in_quick=True, bound_level=16),
    # The `nonstream` c=16 cell again, with a dashboard open on the gateway, polling every second: dashboard
    # reads must leave the request path alone, so the two cells should agree within noise.
    Scenario("nonstream-dashboard", "Non-stream, instant upstream, a dashboard polling every second", "json",
             stream=False, levels=(16,), dashboard=True),
    Scenario("nonstream-50ms", "Non-stream, upstream answers after 50 ms", "json-50ms", stream=False),
    Scenario("stream-125ms", "Stream of 24 events paced over 125 ms", "sse-125ms", stream=True,
             levels=(1, 16, 64, 256, 2000)),
    Scenario("large", "Large request (~100 KB of messages), instant upstream", "json", stream=False, large=True,
             levels=(1, 16, 64)),
    Scenario("streams-2000", "Slow streams held open at once (24 events over 6 s each)", "sse-6s",
             stream=True, levels=(2000,), hold=2000, in_quick=True),
    Scenario("responses", "Responses API, non-stream, instant upstream (translated to chat)", "json",
             stream=False, levels=(1, 16), api="responses"),
    Scenario("responses-stream", "Responses API, stream of 24 events, instant upstream (translated to chat)",
             "sse", stream=True, levels=(1, 16), api="responses"),
    Scenario("embeddings", "Embeddings: 16 inputs × 1,536 dimensions (base64), instant upstream", "embeddings",
             stream=False, levels=(1, 16, 64), body="embeddings", bound_level=16),
    # Anthropic's Messages API in: to a Messages-format upstream (sent as written), and translated to the
    # OpenAI-format one; compare with `nonstream` / `stream` at the same concurrency.
    Scenario("messages", "/messages to a Messages-format upstream, non-stream", "json", stream=False,
             levels=(1, 16), api="messages", model=fixtures.MESSAGES_MODEL),
    Scenario("messages-stream", "/messages to a Messages-format upstream, stream of 25 events", "sse",
             stream=True, levels=(1, 16), api="messages", model=fixtures.MESSAGES_MODEL),
    Scenario("messages-translated", "/messages to an OpenAI-format upstream, non-stream", "json", stream=False,
             levels=(1, 16), api="messages"),
    Scenario("messages-translated-stream", "/messages to an OpenAI-format upstream, stream of 24 events", "sse",
             stream=True, levels=(1, 16), api="messages"),
)


@dataclass(frozen=True)
class Plan:
    """Durations and repetitions; `quick` shortens everything for a smoke run."""

    quick: bool
    cell_seconds: float = 8.0
    warmup_seconds: float = 2.0
    settle_seconds: float = 0.5
    startup_runs: int = 3
    open_loop_steps: int = 4
    open_loop_seconds: float = 4.0
    hold_ramp_seconds: float = 6.0
    hold_seconds: float = 10.0
    #: Most seconds the whole run may spend waiting for other processes to leave the CPUs alone, and most
    #: cells it may measure a second time because they did not.
    quiet_budget_seconds: float = 180.0
    remeasure_budget: int = 8
    #: Runs of each compared target at a scenario's `bound_level`: on this class of machine one 8 s cell
    #: moves by up to ±10% from the next of the same target (±25% within a minute at worse hours), more
    #: than some bounds leave. The report compares the two round by round (`report._pairs`); the median of
    #: nine rounds' differences spreads about a fifth less than that of five (docs/benchmarks.md).
    rounds: int = 9

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(quick=True, cell_seconds=3.0, warmup_seconds=1.0, startup_runs=1, open_loop_steps=2,
                   open_loop_seconds=2.0, hold_ramp_seconds=6.0, hold_seconds=4.0, quiet_budget_seconds=30.0,
                   remeasure_budget=3, rounds=1)

    def levels(self, scenario: Scenario) -> tuple[int, ...]:
        if scenario.hold:
            return (self.hold_streams(scenario),)
        return tuple(c for c in scenario.levels if c <= 16) if self.quick else scenario.levels

    def hold_streams(self, scenario: Scenario) -> int:
        return min(scenario.hold, 200) if self.quick else scenario.hold


class Suite:
    def __init__(self, plan: Plan, target_names: list[str], scenarios: list[Scenario], command: str) -> None:
        self.plan = plan
        self.target_names = target_names
        self.scenarios = scenarios
        self.command = command
        self.work = WORK / "run"
        self.bodies: dict[str, Path] = {}
        self.mock: Mock | None = None
        self.targets: list[Target] = []
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.cells: list[dict[str, Any]] = []
        self.startup: dict[str, dict[str, Any]] = {}
        self.open_loop: dict[str, dict[str, Any]] = {}
        self.litellm_venv = WORK / f"litellm-{LITELLM_VERSION}"
        self.quiet_left = plan.quiet_budget_seconds
        self.remeasures_left = plan.remeasure_budget
        self.waited = 0.0
        self.source: dict[str, Any] = {}
        self.machine: dict[str, Any] = {}

    # -- set-up --------------------------------------------------------------------------------------------

    def setup(self) -> None:
        if self.work.exists():
            _rmtree(self.work)
        self.work.mkdir(parents=True)
        bodies = self.work / "bodies"
        bodies.mkdir()
        for stream in (False, True):
            for large in (False, True):
                name = ("stream" if stream else "json") + ("-large" if large else "")
                path = bodies / f"{name}.json"
                path.write_bytes(fixtures.request(stream=stream, large=large))
                self.bodies[name] = path
            name = "responses-" + ("stream" if stream else "json")
            path = bodies / f"{name}.json"
            path.write_bytes(fixtures.responses_request(stream=stream))
            self.bodies[name] = path
        path = bodies / "embeddings.json"
        path.write_bytes(fixtures.embeddings_request())
        self.bodies["embeddings"] = path
        for scenario in SCENARIOS:
            if scenario.api == "messages":
                path = bodies / f"{scenario.body_name}.json"
                path.write_bytes(fixtures.messages_request(stream=scenario.stream, model=scenario.model))
                self.bodies[scenario.body_name] = path
        self.source = snapshot(REPO, self.work / "src")
        print(f"bench: measuring Crossroads {self.source['commit'] or '(no git)'}"
              f"{' with uncommitted changes' if self.source['modified'] else ''} (copied to "
              f"{(self.work / 'src').relative_to(REPO)})", flush=True)
        self.machine = machine.describe(REPO, None)
        self.mock = Mock.create(self.work / "mock")
        self.mock.start(runners.LOAD_CPU)
        print(f"bench: nginx mock on ports {self.mock.ports}", flush=True)
        for name in self.target_names:
            target = self._make(name)
            try:
                target.prepare()
            except TargetUnavailable as exc:
                self.skipped[name] = str(exc)
                print(f"bench: skipping {name}: {exc}", flush=True)
                continue
            self.targets.append(target)

    def _make(self, name: str) -> Target:
        workdir = self.work / name
        if name == "direct":
            return Direct(workdir)
        if name == "passthrough":
            return Passthrough(workdir)
        if name == "crossroads":
            return Crossroads(name, workdir, postgres=False, source=self.work / "src")
        if name == "crossroads-pg":
            return Crossroads(name, workdir, postgres=True, source=self.work / "src")
        if name == "passthrough-2":
            return Passthrough(workdir, processes=2)
        if name == "crossroads-2w":
            return Crossroads(name, workdir, postgres=False, source=self.work / "src", workers=2)
        if name == "crossroads-nometrics":
            return Crossroads(name, workdir, postgres=False, source=self.work / "src", metrics=False)
        if name == "litellm":
            if not (self.litellm_venv / "bin" / "litellm").exists():
                ensure_litellm(self.litellm_venv)
            return LiteLLM(workdir, self.litellm_venv)
        raise ValueError(name)

    def teardown(self) -> None:
        for target in self.targets:
            target.stop()
            try:
                target.finish()
            except TargetUnavailable as exc:
                self.notes.append(f"{target.name}: clean-up failed: {exc}")
        if self.mock is not None:
            self.mock.stop()

    # -- phases --------------------------------------------------------------------------------------------

    def measure_startup(self) -> None:
        assert self.mock is not None
        probe = self.bodies["json"].read_bytes()
        for target in self.targets:
            if isinstance(target, Direct):
                continue
            runs = []
            for _ in range(self.plan.startup_runs):
                try:
                    start = target.start(self.mock, "json", probe)
                except RuntimeError as exc:
                    self.notes.append(f"{target.name}: start-up failed: {exc}")
                    break
                finally:
                    target.stop()
                runs.append({"seconds": round(start.seconds, 4), "idle_rss_mb": round(start.idle_rss_kb / 1024, 1)})
                time.sleep(0.3)
            if runs:
                self.startup[target.name] = {
                    "runs": runs,
                    "seconds": round(statistics.median(r["seconds"] for r in runs), 4),
                    "idle_rss_mb": round(statistics.median(r["idle_rss_mb"] for r in runs), 1),
                }
                print(f"bench: start-up {target.name}: {self.startup[target.name]['seconds']:.3f} s, "
                      f"idle RSS {self.startup[target.name]['idle_rss_mb']} MB", flush=True)

    def run_scenario(self, scenario: Scenario) -> None:
        assert self.mock is not None
        print(f"bench: scenario {scenario.name}: {scenario.title}", flush=True)
        body = self.bodies[scenario.body_name]
        probe = body.read_bytes()
        running: list[Target] = []
        for target in self.targets:
            if scenario.api not in target.apis or (scenario.dashboard and not isinstance(target, Crossroads)):
                continue
            target.api = scenario.api
            try:
                target.start(self.mock, scenario.profile, probe)
            except RuntimeError as exc:
                self.notes.append(f"{scenario.name}: {target.name} did not start: {exc}")
                target.stop()
                continue
            running.append(target)
            if not scenario.hold:
                try:
                    runners.wrk(target.url, body, target.key, 16, self.plan.warmup_seconds)
                except RuntimeError as exc:
                    self.notes.append(f"{scenario.name}: warm-up of {target.name} failed: {exc}")
        try:
            for index, level in enumerate(self.plan.levels(scenario)):
                order = running[index % len(running):] + running[:index % len(running)] if running else []
                rounds = self.plan.rounds if level == scenario.bound_level else 1
                runs: dict[str, list[dict[str, Any]]] = {}
                for round_ in range(rounds):
                    # Later rounds: only the compared targets, in the other order each time.
                    for target in order if round_ == 0 else [t for t in order[::(-1) ** round_]
                                                             if t.name in COMPARED]:
                        if not self._alive(scenario, target, probe, body):
                            continue
                        runs.setdefault(target.name, []).append(self._measure(scenario, target, level, body))
                        time.sleep(self.plan.settle_seconds)
                for target in order:
                    if target.name in runs:
                        self.cells.append(median_run(runs[target.name]))
            if scenario.open_loop:
                for target in running:
                    self._open_loop(scenario, target, body)
        finally:
            for target in running:
                target.stop()
            for target in self.targets:
                target.api = "chat"

    def _measure(self, scenario: Scenario, target: Target, level: int, body: Path) -> dict[str, Any]:
        """One cell, measured again (once) if other processes were busy during it."""
        self._wait_quiet()
        began = time.perf_counter()
        cell = self._cell(scenario, target, level, body)
        took = time.perf_counter() - began
        if cell.get("interference") and self.remeasures_left > 0 and took <= REMEASURE_MAX_SECONDS:
            self.remeasures_left -= 1
            _print_cell(cell)
            print("bench:   other processes were busy during that cell; measuring it again", flush=True)
            self._wait_quiet()
            again = self._cell(scenario, target, level, body)
            if max(again.get("interference", {0: 0.0}).values()) < max(cell["interference"].values()):
                cell = again
            cell["remeasured"] = True
        if cell.get("interference"):
            self.notes.append(
                f"{scenario.name} c={level} {target.name}: other processes used "
                + ", ".join(f"{share:.0%} of CPU {cpu}" for cpu, share in cell["interference"].items())
                + " during the cell")
        _print_cell(cell)
        return cell

    def _alive(self, scenario: Scenario, target: Target, probe: bytes, body: Path) -> bool:
        """Restart a target whose process has gone (crashed, or killed from outside) before its next cell."""
        assert self.mock is not None
        process = target.process
        if process is None or process.poll() is None:
            return True
        self.notes.append(f"{scenario.name}: {target.name} had exited with status {process.returncode} "
                          "before its next cell; restarted")
        print(f"bench:   {target.name} exited ({process.returncode}); restarting it", flush=True)
        try:
            target.start(self.mock, scenario.profile, probe)
            if not scenario.hold:
                runners.wrk(target.url, body, target.key, 16, self.plan.warmup_seconds)
        except RuntimeError as exc:
            self.notes.append(f"{scenario.name}: {target.name} did not restart: {exc}")
            target.stop()
            return False
        return True

    def _wait_quiet(self, threshold: float = 0.08, window: float = 0.5) -> None:
        """Wait (within the run's budget) until neither CPU is busy with anything but idle targets.

        The suite's own processes are idle between cells, so business here is other work on the machine,
        which would otherwise be measured as the target's latency.
        """
        waited = 0.0
        while True:
            before = procstat.core_times()
            time.sleep(window)
            busy = procstat.core_busy(before, procstat.core_times())
            if max(busy.values()) < threshold or self.quiet_left <= 0:
                break
            waited += window
            self.quiet_left -= window
        if waited:
            self.waited += waited
            print(f"bench:   waited {waited:.1f} s for other processes to go quiet", flush=True)

    def _cell(self, scenario: Scenario, target: Target, level: int, body: Path) -> dict[str, Any]:
        assert self.mock is not None
        cell: dict[str, Any] = {"scenario": scenario.name, "target": target.name, "concurrency": level}
        sut = procstat.Meter(target.pid)
        load = procstat.Meter(self.mock.pid)
        helpers = procstat.Meter(*target.helpers())
        try:
            cores = procstat.core_times()
            sut.start()
            load.start()
            helpers.start()
            began = time.perf_counter()
            if scenario.hold:
                limit = self.plan.hold_ramp_seconds + self.plan.hold_seconds + 240
                run = runners.loadgen("hold", target.url, body, target.key, "--streams", str(level),
                                      "--ramp", str(self.plan.hold_ramp_seconds),
                                      "--duration", str(self.plan.hold_seconds), "--timeout", "120", limit=limit)
                used, mock_used, helpers_used = sut.stop(), load.stop(), helpers.stop()
                result = run.result
                latency = result["latency_us"]
                errors = dict(result["errors"])
                cell.update(tool="loadgen hold", seconds=self.plan.hold_seconds, requests=result["ok"],
                            rps=result["achieved_rps"], open_min=result["open_min"], open_max=result["open_max"],
                            served=result["completed"])
                served = result["completed"]
            else:
                with DashboardPoller(f"http://127.0.0.1:{target.port}", target.key) if scenario.dashboard \
                        else contextlib.nullcontext() as poller:
                    run = runners.wrk(target.url, body, target.key, level, self.plan.cell_seconds)
                used, mock_used, helpers_used = sut.stop(), load.stop(), helpers.stop()
                if poller is not None:
                    cell["dashboard"] = poller.result()
                result = run.result
                measured = result["duration_us"] / 1e6
                latency = result["latency_us"]
                errors = {k: v for k, v in result["errors"].items() if v}
                cell.update(tool="wrk", seconds=round(measured, 3), requests=result["requests"],
                            rps=result["requests"] / measured if measured else 0.0)
                served = result["requests"]
        except RuntimeError as exc:
            cell.update(failed=str(exc))
            return cell
        wall = time.perf_counter() - began
        busy = procstat.core_busy(cores, procstat.core_times())
        # Direct: the system under test is the mock itself, already counted as the SUT.
        load_cpu = run.cpu_seconds + (0.0 if isinstance(target, Direct) else mock_used.cpu_seconds)
        cell.update(
            latency_ms={k: round(v / 1000, 3) for k, v in latency.items()},
            errors=errors,
            errors_total=sum(errors.values()),
            cpu_us_per_request=round(used.cpu_seconds * 1e6 / served, 1) if served else None,
            cpu_util=round(used.cpu_seconds / wall, 3) if wall else None,
            peak_rss_mb=round(used.peak_rss_kb / 1024, 1),
            load_core_util=round(load_cpu / wall, 3) if wall else None,
            core_busy=busy,
        )
        if helpers.pids:
            cell["helpers_cpu_us_per_request"] = round(helpers_used.cpu_seconds * 1e6 / served, 1) if served else None
            cell["helpers_cpu_util"] = round(helpers_used.cpu_seconds / wall, 3) if wall else None
        # Each CPU should be busy only with what the suite put there; more than that means something else ran.
        sut_util = cell["cpu_util"] or 0.0
        expected = {TARGET_CPU: 0.0 if isinstance(target, Direct) else sut_util,
                    runners.LOAD_CPU: cell["load_core_util"] + (sut_util if isinstance(target, Direct) else 0.0)}
        # The database and Redis are not pinned: their share may be on either CPU.
        spare = cell.get("helpers_cpu_util") or 0.0
        other = {cpu: round(busy.get(cpu, 0.0) - share - spare, 3) for cpu, share in expected.items()}
        if any(share > INTERFERENCE for share in other.values()):
            cell["interference"] = {cpu: share for cpu, share in other.items() if share > INTERFERENCE}
        return cell

    def _open_loop(self, scenario: Scenario, target: Target, body: Path) -> None:
        closed = next((c for c in self.cells if c["scenario"] == scenario.name and c["target"] == target.name
                       and c["concurrency"] == 16 and "rps" in c), None)
        if closed is None or not closed["rps"]:
            return
        high = min(closed["rps"] * 1.1, GENERATOR_CEILING)
        low = 0.0
        rate = high / 2
        steps: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for _ in range(self.plan.open_loop_steps):
            rate = round(rate, 1)
            meter = procstat.Meter(target.pid)
            meter.start()
            try:
                run = runners.loadgen("rate", target.url, body, target.key, "--rate", str(rate),
                                      "--duration", str(self.plan.open_loop_seconds), "--warmup", "1",
                                      "--timeout", "30", limit=self.plan.open_loop_seconds + 120)
            except RuntimeError as exc:
                self.notes.append(f"open loop {target.name} at {rate}/s failed: {exc}")
                break
            used = meter.stop()
            result = run.result
            p99 = result["latency_us"].get("p99", float("inf")) / 1000
            lateness = result["send_lateness_us"].get("p99", 0.0) / 1000
            errors = sum(result["errors"].values())
            kept_up = result["achieved_rps"] >= 0.97 * rate and lateness < MAX_SEND_LATENESS_MS
            ok = errors == 0 and kept_up and p99 < OPEN_LOOP_P99_MS
            step = {"rate": rate, "achieved_rps": round(result["achieved_rps"], 1),
                    "p50_ms": round(result["latency_us"].get("p50", 0) / 1000, 3), "p99_ms": round(p99, 3),
                    "errors": errors, "send_lateness_p99_ms": round(lateness, 3),
                    "cpu_util": round(used.cpu_seconds / (self.plan.open_loop_seconds + 1), 3), "ok": ok}
            steps.append(step)
            print(f"bench:   open loop {target.name:14} {rate:9.1f}/s  p99 {p99:8.2f} ms  "
                  f"{'ok' if ok else 'over'}", flush=True)
            if ok:
                low, best = rate, step
            else:
                high = rate
            rate = (low + high) / 2
            time.sleep(self.plan.settle_seconds)
        self.open_loop[target.name] = {
            "p99_bound_ms": OPEN_LOOP_P99_MS,
            "max_rate": best["rate"] if best else None,
            "p50_ms": best["p50_ms"] if best else None,
            "p99_ms": best["p99_ms"] if best else None,
            "generator_bound": bool(best and best["rate"] >= 0.9 * GENERATOR_CEILING) or any(
                not s["ok"] and s["send_lateness_p99_ms"] >= MAX_SEND_LATENESS_MS and s["cpu_util"] < 0.9
                for s in steps),
            "steps": steps,
        }

    # -- results -------------------------------------------------------------------------------------------

    def results(self, started: float, finished: float, litellm: str | None) -> dict[str, Any]:
        if self.source and source_digest(REPO / "src" / "crossroads") != self.source["digest"]:
            self.notes.append("src/ changed in the working tree during the run; the run measured the copy "
                              "taken when it began")
        described = {**(self.machine or machine.describe(REPO, None)), "litellm": litellm}
        if self.source:
            described["crossroads_commit"] = self.source["commit"] + (
                " (with uncommitted changes in src/)" if self.source["modified"] else "")
        data: dict[str, Any] = {
            "suite": "crossroads-bench",
            "format": 1,
            "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
            "finished": dt.datetime.fromtimestamp(finished, dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(finished - started, 1),
            "command": self.command,
            "mode": "quick" if self.plan.quick else "full",
            "plan": dict(vars(self.plan)),
            "machine": described,
            "source": self.source,
            "pinning": {"system_under_test_cpu": TARGET_CPU, "mock_and_load_cpu": runners.LOAD_CPU},
            "scenarios": [{"name": s.name, "title": s.title, "mock_profile": s.profile, "stream": s.stream,
                           "levels": list(self.plan.levels(s))} for s in self.scenarios],
            "targets": [t.name for t in self.targets],
            "skipped": self.skipped,
            "startup": self.startup,
            "cells": self.cells,
            "open_loop": self.open_loop,
            "notes": self.notes,
            "waited_for_quiet_s": round(self.waited, 1),
            "remeasured_cells": sum(1 for c in self.cells if c.get("remeasured")),
        }
        report.derive(data)
        return data


def source_digest(package: Path) -> str:
    """SHA-256 over the package's source files (paths and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def snapshot(repo: Path, into: Path) -> dict[str, Any]:
    """Copy src/crossroads as it is now into `into`, and say which code that is."""
    package = repo / "src" / "crossroads"
    shutil.copytree(package, into / "crossroads", ignore=shutil.ignore_patterns("__pycache__"))
    # Byte-compile, as an installation does: otherwise, with PYTHONDONTWRITEBYTECODE set, every start would
    # compile the whole package and start-up time would measure the compiler.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into)], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    modified = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
                              capture_output=True, text=True, check=False).stdout.strip()
    return {"commit": commit, "modified": bool(modified), "digest": source_digest(into / "crossroads")}


def median_run(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Of several runs of one cell, the run of median throughput, with every run's figures under `runs`."""
    if len(cells) == 1:
        return cells[0]
    measured = sorted((c for c in cells if "failed" not in c), key=lambda c: c["rps"])
    if not measured:
        return cells[0]
    chosen = dict(measured[(len(measured) - 1) // 2])
    chosen["runs"] = [{"rps": round(c["rps"], 1), "p50_ms": c["latency_ms"].get("p50"),
                       "cpu_us_per_request": c["cpu_us_per_request"]} if "failed" not in c else
                      {"failed": c["failed"]} for c in cells]
    return chosen


def _print_cell(cell: dict[str, Any]) -> None:
    if "failed" in cell:
        print(f"bench:   {cell['target']:14} c={cell['concurrency']:<5} FAILED {cell['failed'][:200]}", flush=True)
        return
    lat = cell["latency_ms"]
    print(f"bench:   {cell['target']:14} c={cell['concurrency']:<5} {cell['rps']:9.1f} req/s  "
          f"p50 {lat.get('p50', 0):8.2f}  p99 {lat.get('p99', 0):8.2f} ms  "
          f"cpu {cell['cpu_us_per_request'] or 0:7.0f} us/req  rss {cell['peak_rss_mb']:6.1f} MB  "
          f"err {cell['errors_total']}  load-core {cell['load_core_util']:.0%}", flush=True)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (1 << 20, 65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(wanted, hard)))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _write(data: dict[str, Any], publish: bool) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromisoformat(data["started"]).strftime("%Y%m%dT%H%M%SZ")
    incomplete = any(n == "interrupted" or n.startswith("aborted") for n in data["notes"])
    suffix = "-partial" if incomplete else "" if publish else f"-{data['mode']}"
    markdown = report.markdown(data)
    written = []
    for name, text in ((f"{stamp}{suffix}.json", json.dumps(data, indent=1) + "\n"), (f"{stamp}{suffix}.md", markdown)):
        path = RESULTS / name
        path.write_text(text)
        written.append(path)
    if publish:
        (RESULTS / "latest.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / "latest.md").write_text(markdown)
        written += [RESULTS / "latest.json", RESULTS / "latest.md"]
        if DOCS.exists():
            DOCS.write_text(report.splice_docs(DOCS.read_text(), data))
            written.append(DOCS)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark Crossroads against a passthrough proxy, LiteLLM and the bare mock upstream.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s cells, c=1 and 16 only, three scenarios, one start-up")
    parser.add_argument("--targets", help=f"comma-separated subset of {','.join(TARGETS + EXTRA_TARGETS)} "
                                          f"(default: all but {','.join(EXTRA_TARGETS)})")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(s.name for s in SCENARIOS)}")
    parser.add_argument("--seconds", type=float, help="seconds per measured cell (default 8, quick 3)")
    parser.add_argument("--publish", action="store_true",
                        help="also update latest.* and docs/benchmarks.md (the default for a full, unfiltered run)")
    parser.add_argument("--no-publish", action="store_true", help="never update latest.* or docs/benchmarks.md")
    parser.add_argument("--report", metavar="RESULTS.json", type=Path,
                        help="measure nothing: render RESULTS.json again (markdown next to it; with --publish, "
                             "also latest.* and docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.report is not None:
        return _rerender(args.report, args.publish)

    names = _subset(args.targets, TARGETS + EXTRA_TARGETS, "target") if args.targets else list(DEFAULT_TARGETS)
    if "direct" not in names:
        names.insert(0, "direct")  # every comparison is against it
    scenario_names = _subset(args.scenarios, tuple(s.name for s in SCENARIOS), "scenario")
    if args.scenarios is None and args.quick:
        scenario_names = [s.name for s in SCENARIOS if s.in_quick]
    scenarios = [s for s in SCENARIOS if s.name in scenario_names]
    plan = Plan.make(args.quick)
    if args.seconds:
        plan = replace(plan, cell_seconds=args.seconds)
    full = not args.quick and args.targets is None and args.scenarios is None and args.seconds is None
    publish = (args.publish or full) and not args.no_publish

    if (os.cpu_count() or 1) < 2:
        print("bench: needs at least 2 CPUs (one for the system under test, one for the load)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {runners.LOAD_CPU})
    # Stop cleanly (targets stopped, partial results written) on Ctrl-C or a plain kill, even when started in
    # the background, where the shell ignores SIGINT for it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    nofile = _raise_nofile()
    if nofile < 8192:
        print(f"bench: warning: only {nofile} open files allowed; the 2,000-stream scenario needs ~8,000",
              file=sys.stderr)
    command = "bench/run" + "".join(" " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    suite = Suite(plan, names, scenarios, command)
    started = time.time()
    try:
        suite.setup()
        suite.measure_startup()
        for scenario in scenarios:
            suite.run_scenario(scenario)
    except KeyboardInterrupt:
        suite.notes.append("interrupted")
        publish = False
        print("bench: interrupted; writing what was measured", file=sys.stderr)
    except Exception:
        suite.notes.append("aborted: " + traceback.format_exc(limit=3).strip().splitlines()[-1])
        publish = False
        traceback.print_exc()
    finally:
        suite.teardown()
    finished = time.time()
    litellm = litellm_version(suite.litellm_venv) if "litellm" in names else None
    data = suite.results(started, finished, litellm)
    for path in _write(data, publish):
        print(f"bench: wrote {path.relative_to(REPO)}", flush=True)
    print(report.summary(data), flush=True)
    return 0


def _rerender(path: Path, publish: bool) -> int:
    data = json.loads(path.read_text())
    report.derive(data)
    markdown = report.markdown(data)
    path.with_suffix(".md").write_text(markdown)
    print(f"bench: wrote {path.with_suffix('.md')}")
    if publish:
        if path.resolve() != (RESULTS / "latest.json").resolve():
            (RESULTS / "latest.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / "latest.md").write_text(markdown)
        DOCS.write_text(report.splice_docs(DOCS.read_text() if DOCS.exists() else "", data))
        print(f"bench: wrote {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'} and {DOCS}")
    print(report.summary(data))
    return 0


def _subset(raw: str | None, known: tuple[str, ...], what: str) -> list[str]:
    if raw is None:
        return list(known)
    chosen = [x.strip() for x in raw.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise SystemExit(f"bench/run: unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [x for x in known if x in chosen]
