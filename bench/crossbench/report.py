"""Derived figures (added latency, ratios, per-chunk work, the project's targets) and the markdown report."""

from __future__ import annotations

import re
import statistics
from typing import Any

from crossbench.fixtures import STREAM_EVENTS

DOCS_BEGIN = "<!-- bench:results:begin -->"
DOCS_END = "<!-- bench:results:end -->"

_ORDER = ("direct", "passthrough", "crossroads", "crossroads-nometrics", "crossroads-pg", "litellm", "passthrough-2",
          "crossroads-2w")

Key = tuple[str, str, int]


def _index(data: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {(c["scenario"], c["target"], c["concurrency"]): c for c in data["cells"] if "failed" not in c}


def derive(data: dict[str, Any]) -> None:
    """Add to `data`: each cell's latency over `direct`, throughput ratios, per-chunk work and the checks."""
    cells = _index(data)
    for (_, _, level), cell in cells.items():
        # wrk does not count requests still waiting for their reply when the cell ends; fewer replies than
        # connections means some connections never got one.
        if cell.get("tool") == "wrk" and cell["requests"] < level:
            cell["errors"]["unanswered"] = level - cell["requests"]
            cell["errors_total"] = sum(cell["errors"].values())
        if not cell["requests"]:
            cell["latency_ms"] = {}  # nothing completed: no latency to show
    for (scenario, target, level), cell in cells.items():
        base = cells.get((scenario, "direct", level))
        if target != "direct" and base is not None:
            cell["added_ms"] = {q: round(cell["latency_ms"][q] - base["latency_ms"][q], 3)
                                for q in ("p50", "p90", "p99") if q in cell["latency_ms"] and q in base["latency_ms"]}
    ratios = []
    for scenario, level in sorted({(s, c) for s, _, c in cells}, key=lambda k: (_scenario_rank(data, k[0]), k[1])):
        row: dict[str, Any] = {"scenario": scenario, "concurrency": level}
        for name, (a, b) in {"crossroads/passthrough": ("crossroads", "passthrough"),
                             "crossroads/litellm": ("crossroads", "litellm"),
                             "crossroads-pg/passthrough": ("crossroads-pg", "passthrough"),
                             "crossroads-pg/crossroads": ("crossroads-pg", "crossroads"),
                             # 1 → 2 workers, and the same for the passthrough started the same way.
                             "crossroads-2w/crossroads": ("crossroads-2w", "crossroads"),
                             "passthrough-2/passthrough": ("passthrough-2", "passthrough"),
                             "crossroads/crossroads-nometrics": ("crossroads", "crossroads-nometrics")}.items():
            ca, cb = cells.get((scenario, a, level)), cells.get((scenario, b, level))
            if ca and cb and cb["rps"]:
                row[name] = round(ca["rps"] / cb["rps"], 3)
        if len(row) > 2:
            ratios.append(row)
    data["ratios"] = ratios
    per_chunk: dict[str, float] = {}
    pt = cells.get(("stream", "passthrough", 16))
    for target in ("crossroads", "crossroads-pg", "litellm"):
        streamed = cells.get(("stream", target, 16))
        if streamed and pt and streamed.get("cpu_us_per_request") and pt.get("cpu_us_per_request"):
            spent = streamed["cpu_us_per_request"] - pt["cpu_us_per_request"]
            per_chunk[target] = round(spent / STREAM_EVENTS, 2)
    data["per_chunk_us"] = per_chunk
    data["checks"] = _checks(data, cells)


def _scenario_rank(data: dict[str, Any], name: str) -> int:
    names = [s["name"] for s in data["scenarios"]]
    return names.index(name) if name in names else len(names)


def _checks(data: dict[str, Any], cells: dict[Key, dict[str, Any]]) -> list[dict[str, Any]]:
    """The project's performance targets, each with the figure measured and pass/fail (None: not measured
    or only reported)."""
    out: list[dict[str, Any]] = []

    def add(name: str, bound: str, measured: str | None = None, passed: bool | None = None, note: str = "") -> None:
        out.append({"target": name, "bound": bound, "measured": measured or "not measured",
                    "pass": passed if measured else None, "note": note})

    def throughput(name: str, bound: str, scenario: str, a: str, b: str, least: float, times: bool = False) -> None:
        ca, cb = cells.get((scenario, a, 16)), cells.get((scenario, b, 16))
        if not ca or not cb or not cb["rps"]:
            add(name, bound)
            return
        pairs = _pairs(ca, cb)  # each round's two runs side by side: what changed between rounds cancels out
        ratio = statistics.median(x["rps"] / y["rps"] for x, y in pairs) if pairs else ca["rps"] / cb["rps"]
        shown = f"{ratio:.1f}×" if times else f"{ratio:.0%}"
        add(name, bound, f"{shown} ({_how(pairs, 'ratio')}{ca['rps']:,.0f} vs {cb['rps']:,.0f} req/s"
            f"{'' if pairs else _medians(ca, cb)})", ratio >= least)

    throughput("Non-stream instant, c=16: throughput vs passthrough", "≥ 60%",
               "nonstream", "crossroads", "passthrough", 0.60)
    throughput("Non-stream instant, c=16: throughput vs LiteLLM", "≥ 40×",
               "nonstream", "crossroads", "litellm", 40.0, times=True)

    if cells.get(("nonstream", "crossroads-nometrics", 16)):  # only when asked for: the price of the metrics
        throughput("Non-stream instant, c=16: throughput with metrics on vs off", "≥ 95%",
                   "nonstream", "crossroads", "crossroads-nometrics", 0.95)

    added = (cells.get(("nonstream", "crossroads", 1)) or {}).get("added_ms")
    for quantile, limit in (("p50", 0.5), ("p99", 1.0)):
        name, bound = f"Added latency over direct, non-stream c=1: {quantile}", f"≤ {limit:g} ms"
        if added:
            add(name, bound, f"{added[quantile]:+.3f} ms", added[quantile] <= limit)
        else:
            add(name, bound)

    throughput("Stream of 24 events, c=16: throughput vs passthrough", "≥ 60%",
               "stream", "crossroads", "passthrough", 0.60)
    name = "Stream c=16: per-chunk work, (Crossroads − passthrough CPU µs/request) / 24"
    chunk = data.get("per_chunk_us", {}).get("crossroads")
    cr, pt = cells.get(("stream", "crossroads", 16)), cells.get(("stream", "passthrough", 16))
    if chunk is not None and cr and pt:
        add(name, "reported", f"{chunk:.1f} µs/chunk ({cr['cpu_us_per_request']:,.0f} vs "
            f"{pt['cpu_us_per_request']:,.0f} µs/request)")
    else:
        add(name, "reported")

    hold = next((c for (s, t, _), c in cells.items() if s == "streams-2000" and t == "crossroads"), None)
    if hold is not None:
        label = f"{hold['concurrency']:,} slow streams held open"
        add(f"{label}: all complete", "0 errors",
            f"{hold['errors_total']} errors; {hold['served']:,} streams served; "
            f"{hold['open_min']:,}–{hold['open_max']:,} open at once",
            hold["errors_total"] == 0 and hold["open_min"] >= hold["concurrency"] * 0.95)
        if hold.get("added_ms"):
            add(f"{label}: added p99 over direct", "≤ 20 ms", f"{hold['added_ms']['p99']:+.1f} ms",
                hold["added_ms"]["p99"] <= 20)
        else:
            add(f"{label}: added p99 over direct", "≤ 20 ms")
        add(f"{label}: peak RSS", "≤ 300 MB", f"{hold['peak_rss_mb']:.0f} MB", hold["peak_rss_mb"] <= 300)
    else:
        add("2,000 slow streams held open: all complete, added p99, RSS", "0 errors, ≤ 20 ms, ≤ 300 MB")

    paced = cells.get(("stream-125ms", "crossroads", 2000))
    if paced is not None:
        direct = cells.get(("stream-125ms", "direct", 2000))
        saturated = direct is not None and _busy(direct, 1) >= 0.9
        note = ("16,000 streams/s asked for: the load core saturates even for direct, so latency here is "
                "queueing" if saturated else "")
        label = "wrk -c 2000 on the 125 ms paced stream"
        add(f"{label}: all complete", "0 errors", f"{paced['errors_total']} errors, {paced['requests']:,} streams",
            paced["errors_total"] == 0, note)
        if paced.get("added_ms"):
            add(f"{label}: added p99 over direct", "≤ 20 ms", f"{paced['added_ms']['p99']:+.1f} ms",
                paced["added_ms"]["p99"] <= 20, note)
        add(f"{label}: peak RSS", "≤ 300 MB", f"{paced['peak_rss_mb']:.0f} MB", paced["peak_rss_mb"] <= 300)

    name, bound = "Embeddings, 16 inputs × 1,536 dimensions, c=16: added p50 over passthrough", "≤ 0.3 ms"
    cr, pt = cells.get(("embeddings", "crossroads", 16)), cells.get(("embeddings", "passthrough", 16))
    if cr and pt and "p50" in cr["latency_ms"] and "p50" in pt["latency_ms"]:
        pairs = [(x, y) for x, y in _pairs(cr, pt) if x.get("p50_ms") is not None and y.get("p50_ms") is not None]
        gap = (statistics.median(float(x["p50_ms"]) - float(y["p50_ms"]) for x, y in pairs) if pairs
               else cr["latency_ms"]["p50"] - pt["latency_ms"]["p50"])
        add(name, bound, f"{gap:+.3f} ms ({_how(pairs, 'difference')}{cr['latency_ms']['p50']:.3f} vs "
            f"{pt['latency_ms']['p50']:.3f} ms{'' if pairs else _medians(cr, pt)})", gap <= 0.3)
    else:
        add(name, bound)

    start = data.get("startup", {}).get("crossroads")
    if start:
        add("Crossroads idle RSS after start", "≤ 80 MB", f"{start['idle_rss_mb']:.1f} MB",
            start["idle_rss_mb"] <= 80)
        add("Crossroads start-up to first served request", "≤ 1 s", f"{start['seconds']:.3f} s",
            start["seconds"] <= 1.0)
    else:
        add("Crossroads idle RSS after start", "≤ 80 MB")
        add("Crossroads start-up to first served request", "≤ 1 s")
    throughput("PostgreSQL + Redis, non-stream instant c=16: throughput vs passthrough", "≥ 50%",
               "nonstream", "crossroads-pg", "passthrough", 0.50)
    # Other inbound APIs: CPU per request against a chat completion to the same mock, in the same run.
    for scenario, chat, label, extra in (
            ("responses", "nonstream", "/responses non-stream", 0.25),
            ("responses-stream", "stream", "/responses stream", 0.25),
            ("messages", "nonstream", "/messages to a Messages-format upstream, non-stream", 0.10),
            ("messages-stream", "stream", "/messages to a Messages-format upstream, stream", 0.10),
            ("messages-translated", "nonstream", "/messages translated, non-stream", 0.25),
            ("messages-translated-stream", "stream", "/messages translated, stream", 0.25)):
        for level in (1, 16):
            name = f"{label}, c={level}: CPU per request vs a chat completion to the same mock"
            cr, cc = cells.get((scenario, "crossroads", level)), cells.get((chat, "crossroads", level))
            if cr and cc and cc["cpu_us_per_request"]:
                ratio = cr["cpu_us_per_request"] / cc["cpu_us_per_request"]
                add(name, f"≤ +{extra:.0%}", f"{ratio - 1:+.0%} ({cr['cpu_us_per_request']:,.0f} vs "
                    f"{cc['cpu_us_per_request']:,.0f} µs/request)", ratio <= 1 + extra)
            else:
                add(name, f"≤ +{extra:.0%}")
    return out


def _pairs(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Two compared cells' runs round by round (the i-th run of each was measured in the same round, one
    right after the other); none unless both have every round."""
    ra, rb = a.get("runs") or [], b.get("runs") or []
    if len(ra) < 2 or len(ra) != len(rb):
        return []
    return [(x, y) for x, y in zip(ra, rb, strict=True) if "failed" not in x and "failed" not in y]


def _how(pairs: list[tuple[dict[str, Any], dict[str, Any]]], what: str) -> str:
    return f"median of {len(pairs)} alternating rounds' {what}s; median runs " if pairs else ""


def _medians(*cells: dict[str, Any]) -> str:
    """How the compared cells were measured, when each is the median of several runs."""
    if not all(c.get("runs") for c in cells):
        return ""
    return f"; each the median of {min(len(c['runs']) for c in cells)} alternating runs"


def _busy(cell: dict[str, Any], cpu: int) -> float:
    """How busy a CPU was during a cell (keys are ints in memory, strings once read back from JSON)."""
    busy = cell.get("core_busy") or {}
    return float(busy.get(cpu, busy.get(str(cpu), 0.0)))


# -- markdown ----------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ",.0f", dash: str = "—") -> str:
    if value is None:
        return dash
    return format(value, spec)


def _verdict(passed: bool | None) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "—"}[passed]


def _machine_line(m: dict[str, Any]) -> str:
    parts = [f"{m['cpu']}, {m['cores']} cores", f"{m['memory_gib']} GiB" if m.get("memory_gib") else None,
             f"Linux {m['kernel']}", m.get("os"), f"Python {m['python']}",
             f"crossroads {m['crossroads']}" + (f" @ {m['crossroads_commit']}" if m.get("crossroads_commit") else ""),
             f"aiohttp {m['aiohttp']}", f"uvloop {m['uvloop']}",
             f"LiteLLM {m['litellm']}" if m.get("litellm") else None, f"nginx {m['nginx']}", f"wrk {m['wrk']}",
             f"PostgreSQL {m['postgresql']}" if m.get("postgresql") else None,
             f"Redis {m['redis']}" if m.get("redis") else None]
    return "; ".join(p for p in parts if p)


def targets_table(data: dict[str, Any]) -> list[str]:
    lines = ["| Target | Bound | Measured | Result |", "|---|---|---|---|"]
    for check in data["checks"]:
        note = f" — {check['note']}" if check["note"] else ""
        lines.append(f"| {check['target']} | {check['bound']} | {check['measured']}{note} "
                     f"| {_verdict(check['pass'])} |")
    return lines


def summary_table(data: dict[str, Any]) -> list[str]:
    """Throughput of every target at c=16 (the 2,000-stream scenario at its one level), with ratios."""
    cells = _index(data)
    targets = [t for t in _ORDER if t in data["targets"]]
    head = "| Scenario | c | " + " | ".join(targets) + " | crossroads / passthrough | crossroads / litellm |"
    lines = [head, "|---|---|" + "---|" * (len(targets) + 2)]
    for scenario in data["scenarios"]:
        level = 16 if 16 in scenario["levels"] else scenario["levels"][0]
        row = [cells.get((scenario["name"], t, level)) for t in targets]
        if not any(row):
            continue
        values = " | ".join(_fmt(c and c["rps"]) for c in row)
        ratio: dict[str, Any] = next(
            (r for r in data["ratios"] if r["scenario"] == scenario["name"] and r["concurrency"] == level), {})
        times = "×" if "crossroads/litellm" in ratio else ""
        lines.append(f"| {scenario['title']} | {level:,} | {values} "
                     f"| {_fmt(ratio.get('crossroads/passthrough'), '.0%')} "
                     f"| {_fmt(ratio.get('crossroads/litellm'), '.1f')}{times} |")
    scaling = [f"{r['scenario']} c={r['concurrency']}: Crossroads ×{r['crossroads-2w/crossroads']:.2f}"
               + (f", passthrough ×{r['passthrough-2/passthrough']:.2f}" if "passthrough-2/passthrough" in r else "")
               for r in data["ratios"] if "crossroads-2w/crossroads" in r]
    if scaling:
        lines += ["", "Throughput from one worker (process) on CPU 0 to two on both CPUs, which they share with the "
                  "load generator and the mock: " + "; ".join(scaling) + "."]
    return lines


def _scenario_table(data: dict[str, Any], name: str) -> list[str]:
    cells = [c for c in data["cells"] if c["scenario"] == name]
    order = {t: i for i, t in enumerate(_ORDER)}
    cells.sort(key=lambda c: (c["concurrency"], order.get(c["target"], 99)))
    lines = ["| c | target | req/s | p50 ms | p90 ms | p99 ms | +p50 ms | +p99 ms | CPU µs/req | CPU use "
             "| peak RSS MB | errors | load core |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        if "failed" in c:
            reason = " ".join(c["failed"].split()).replace("|", "/")[:120]
            lines.append(f"| {c['concurrency']:,} | {c['target']} | failed: {reason} |" + " |" * 10)
            continue
        lat, added = c["latency_ms"], c.get("added_ms", {})
        lines.append(
            f"| {c['concurrency']:,} | {c['target']} | {_fmt(c['rps'])} | {_fmt(lat.get('p50'), '.2f')} "
            f"| {_fmt(lat.get('p90'), '.2f')} | {_fmt(lat.get('p99'), '.2f')} | {_fmt(added.get('p50'), '+.2f')} "
            f"| {_fmt(added.get('p99'), '+.2f')} | {_fmt(c['cpu_us_per_request'])} | {_fmt(c['cpu_util'], '.0%')} "
            f"| {_fmt(c['peak_rss_mb'], '.0f')} | {_errors(c)} | {_fmt(c['load_core_util'], '.0%')} |")
    return lines


def _errors(cell: dict[str, Any]) -> str:
    if not cell["errors_total"]:
        return "0"
    return f"{cell['errors_total']:,} (" + ", ".join(f"{k} {v:,}" for k, v in cell["errors"].items()) + ")"


def results_section(data: dict[str, Any], heading: str = "##") -> str:
    """The body of a report: every table, without a title."""
    m = data["machine"]
    out = [
        f"Run {data['started']} ({data['mode']}, {data['duration_s'] / 60:.1f} min), made by:",
        "",
        "```sh",
        data["command"],
        "```",
        "",
        f"Machine: {_machine_line(m)}. System under test on CPU {data['pinning']['system_under_test_cpu']}; "
        f"mock and load generators on CPU {data['pinning']['mock_and_load_cpu']}.",
        "",
    ]
    if data["skipped"]:
        out += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in data["skipped"].items()), ""]
    out += [f"{heading} Targets", "", *targets_table(data), "",
            f"{heading} Throughput at c=16 (req/s)", "", *summary_table(data), ""]
    if data["startup"]:
        out += [f"{heading} Start-up and idle memory", "",
                "Spawn to the first served chat completion, and RSS one second later; median of "
                f"{data['plan']['startup_runs']} starts.", "",
                "| target | start-up | idle RSS |", "|---|---:|---:|"]
        for target in _ORDER:
            s = data["startup"].get(target)
            if s:
                out.append(f"| {target} | {s['seconds']:.3f} s | {s['idle_rss_mb']:.1f} MB |")
        out.append("")
    for scenario in data["scenarios"]:
        if not any(c["scenario"] == scenario["name"] for c in data["cells"]):
            continue
        out += [f"{heading} {scenario['title']}", "", f"Mock profile `{scenario['mock_profile']}`.", ""]
        out += _scenario_table(data, scenario["name"])
        if scenario["name"] == "stream" and data.get("per_chunk_us"):
            out += ["", "Per-chunk work at c=16, (target − passthrough CPU µs/request) / 24: " + ", ".join(
                f"{t} {v:.1f} µs" for t, v in data["per_chunk_us"].items()) + "."]
        if scenario["name"] == "streams-2000":
            hold = [c for c in data["cells"] if c["scenario"] == "streams-2000" and "open_min" in c]
            if hold:
                out += ["", "Streams open at once during the measured window (min–max): " + ", ".join(
                    f"{c['target']} {c['open_min']:,}–{c['open_max']:,}" for c in hold) + "."]
        if scenario["name"] == "nonstream" and data["open_loop"]:
            out += ["", f"Open loop: the highest fixed rate whose p99 stays under "
                    f"{next(iter(data['open_loop'].values()))['p99_bound_ms']:g} ms with no errors (requests "
                    "dispatched on schedule whatever the replies; latency from dispatch).", "",
                    "| target | max rate (req/s) | p50 ms | p99 ms | rates tried (req/s → p99 ms) |",
                    "|---|---:|---:|---:|---|"]
            for target in _ORDER:
                o = data["open_loop"].get(target)
                if o is None:
                    continue
                tried = ", ".join(f"{s['rate']:,.0f}→{s['p99_ms']:.1f}" for s in o["steps"])
                if o["max_rate"] is None:
                    rate = "none"
                elif o["generator_bound"]:
                    rate = f"≥ {o['max_rate']:,.0f} (generator limit)"
                else:
                    rate = f"{o['max_rate']:,.0f}"
                out.append(f"| {target} | {rate} | {_fmt(o['p50_ms'], '.2f')} | {_fmt(o['p99_ms'], '.2f')} | {tried} |")
        out.append("")
    if data["notes"]:
        out += [f"{heading} Notes from the run", "", *[f"- {n}" for n in data["notes"]], ""]
    out += ["Columns: +p50/+p99 are the target's latency minus `direct`'s in the same scenario at the same "
            "concurrency; CPU µs/req and CPU use are the system under test's (for `direct`, the mock's); "
            "load core is the share of CPU 1 used by the mock and the load generator — near 100% the load "
            "side, not the target, was the limit.", ""]
    return "\n".join(out)


def markdown(data: dict[str, Any]) -> str:
    return f"# Crossroads benchmark results\n\n{results_section(data)}"


def splice_docs(text: str, data: dict[str, Any]) -> str:
    """Replace the generated section of docs/benchmarks.md with this run's tables."""
    section = f"{DOCS_BEGIN}\n{results_section(data, heading='###')}\n{DOCS_END}"
    if DOCS_BEGIN in text and DOCS_END in text:
        return re.sub(re.escape(DOCS_BEGIN) + r".*?" + re.escape(DOCS_END), lambda _: section, text, flags=re.S)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def summary(data: dict[str, Any]) -> str:
    """What the terminal shows at the end of a run."""
    lines: list[str] = ["", *summary_table(data), "", *targets_table(data)]
    return "\n".join(lines)


__all__ = ["derive", "markdown", "splice_docs", "summary"]
