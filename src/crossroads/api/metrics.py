"""`GET /metrics`: every gateway process's metrics in Prometheus's text format (see `crossroads/metrics/`).

With `CROSSROADS_METRICS_TOKEN` set, a scrape must carry `Authorization: Bearer <token>`; without it, or
with another token, the answer is 401. With `CROSSROADS_METRICS=off` the route does not exist (404).
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from crossroads.errors import Unauthorized
from crossroads.metrics.recorder import Metrics


class MetricsAPI:
    def __init__(self, metrics: Metrics, token: str | None) -> None:
        self.metrics = metrics
        self._expected = f"Bearer {token}".encode() if token else None

    async def get(self, request: web.Request) -> web.Response:
        if self._expected is not None:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, self._expected):
                raise Unauthorized("Metrics need the bearer token set in CROSSROADS_METRICS_TOKEN")
        return web.Response(body=await self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


__all__ = ["MetricsAPI"]
