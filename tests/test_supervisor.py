"""The supervisor of `crossroads serve --workers N`: its listening sockets, and the back-off that keeps a
worker dying over and over from being restarted in a tight loop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from crossroads.errors import ConfigError
from crossroads.supervisor import Listeners
from tests.test_workers import _start, _stop


def test_with_reuse_port_each_worker_gets_a_socket_of_its_own_on_the_one_port() -> None:
    listeners = Listeners("127.0.0.1", 0)
    first, second = listeners.for_worker(), listeners.for_worker()
    try:
        assert first is not second and first.getsockname() == second.getsockname()
        assert not first.get_inheritable()  # only the worker it is passed to gets it
        with socket.create_connection(first.getsockname(), timeout=2):
            pass
    finally:
        listeners.release(first)
        listeners.release(second)
        listeners.close()
    assert first.fileno() == -1  # closed once handed over


def test_without_reuse_port_every_worker_shares_one_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    listeners = Listeners("127.0.0.1", 0)
    first, second = listeners.for_worker(), listeners.for_worker()
    assert first is second
    listeners.release(first)
    assert first.fileno() != -1  # still needed by the next worker
    listeners.close()
    assert first.fileno() == -1


def test_a_busy_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="cannot listen on"):
            Listeners("127.0.0.1", taken.getsockname()[1])


def _workers(supervisor: int) -> set[int]:
    done = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True)
    return {int(pid) for pid in done.stdout.split()}


def test_a_worker_dying_again_and_again_is_restarted_ever_more_slowly(tmp_path: Path) -> None:
    gateway = _start(tmp_path)
    try:
        supervisor = gateway.popen.pid
        workers = _workers(supervisor)
        assert len(workers) == 2
        victim = min(workers)
        for _ in range(3):  # kill the same slot's worker as soon as it is back: a crash loop
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while True:
                now = _workers(supervisor)
                if len(now) == 2 and victim not in now:
                    break
                assert time.monotonic() < deadline, "no worker replaced the killed one"
                time.sleep(0.05)
            (victim,) = now - workers  # its replacement
            workers = now
    finally:
        assert _stop(gateway) == 0
    log = (tmp_path / "stderr.log").read_text()
    delays = [line.rsplit(" in ", 1)[1] for line in log.splitlines() if "starting a new one in" in line]
    assert delays == ["0.5s", "1.0s", "2.0s"], log[-2000:]
