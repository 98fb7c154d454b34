"""A dashboard left open during a cell: signs in with the target's API key and, every second, asks what
the dashboard's pages ask (activity, recent generations, the key, a model's endpoints and their history).

Used by the `nonstream-dashboard` scenario, the `nonstream` c=16 cell with this poller running, so the two
cells of one run show whether dashboard reads reach the request path. It runs in the suite's process, on
the load CPU, with the standard library only.
"""

from __future__ import annotations

import http.cookiejar
import json
import statistics
import threading
import time
import urllib.request
from typing import Any

from crossbench import fixtures

INTERVAL = 1.0


class DashboardPoller:
    def __init__(self, root: str, key: str, interval: float = INTERVAL) -> None:
        self.root = root.rstrip("/")
        self.key = key
        self.interval = interval
        self.polls = 0
        self.errors = 0
        self.durations: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        model = fixtures.MODEL
        self.paths = ["/activity?granularity=hour&group_by=model", "/activity?group_by=key", "/generations",
                      "/key", f"/models/{model}/endpoints", f"/models/{model}/history"]

    def __enter__(self) -> DashboardPoller:
        self._call("POST", "/session", {"key": self.key})
        self._thread = threading.Thread(target=self._run, name="dashboard-poller", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                for path in self.paths:
                    self._call("GET", path)
                self.durations.append(time.perf_counter() - began)
            except Exception:
                self.errors += 1
            self.polls += 1
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - began)))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.root}/dashboard/api{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def result(self) -> dict[str, Any]:
        ms = sorted(d * 1000 for d in self.durations)
        return {"polls": self.polls, "errors": self.errors,
                "poll_ms_p50": round(statistics.median(ms), 1) if ms else None,
                "poll_ms_max": round(ms[-1], 1) if ms else None}
