"""What a process tree costs, read from /proc: CPU time, resident memory and its peak.

A target may be one process or a few (a server and its helpers); every figure is the sum over the process
and all its descendants. CPU is `utime + stime` from /proc/<pid>/stat, which includes threads that have
already exited. The peak resident set (VmHWM) can be reset to the current RSS by writing 5 to
/proc/<pid>/clear_refs, so each benchmark cell reports its own peak rather than the process's lifetime peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))  # the parent's pid
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by `pids` (all their threads), in seconds."""
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / _TICKS


def _stat(pid: int) -> list[bytes] | None:
    """The fields of `/proc/<pid>/stat` after the command name (the first is the state, field 3 of
    stat(5)); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pids: list[int]) -> int:
    return sum(_status_kb(pid, "VmRSS:") for pid in pids)


def peak_rss_kb(pids: list[int]) -> int:
    return sum(_status_kb(pid, "VmHWM:") for pid in pids)


def reset_peak(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    done = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            done = False
    return done


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds and peak RSS of a process tree over an interval."""

    cpu_seconds: float
    peak_rss_kb: int


class Meter:
    """Measure process trees over one interval: `start()`, run the load, `stop()`."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self._cpu = 0.0

    def _all(self) -> list[int]:
        return list(dict.fromkeys(p for pid in self.pids for p in tree(pid)))

    def start(self) -> None:
        pids = self._all()
        reset_peak(pids)
        self._cpu = cpu_seconds(pids)

    def stop(self) -> Usage:
        pids = self._all()
        return Usage(cpu_seconds(pids) - self._cpu, peak_rss_kb(pids))


def named(*names: str) -> list[int]:
    """Processes whose command name (comm) is one of `names`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() in names:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def core_times() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies since boot, from /proc/stat."""
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values]
                idle = ticks[3] + ticks[4]  # idle + iowait
                total = sum(ticks[:8])  # guest time is already included in user
                out[int(name[3:])] = (total - idle, total)
    return out


def core_busy(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> dict[int, float]:
    """Share of each CPU that was busy between two `core_times()` readings (whatever ran on it)."""
    busy = {}
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (b1, t1))
        busy[cpu] = round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else 0.0
    return busy
