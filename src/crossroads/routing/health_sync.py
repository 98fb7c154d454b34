"""Endpoint health shared between gateway processes through the shared-state link (`storage/link.py`).

Each process publishes the outcomes it recorded, in one message every `interval` seconds, on
`<ns>:health`, and applies every other process's outcomes to its own `Health`. All processes therefore see
(within a fraction of a second) the same failures, uptime and latency figures, and route alike. If the link
is unreachable, each process goes on with its own figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from crossroads.routing.health import Health, Outcome
from crossroads.storage.link import Link, SharedStateError

log = logging.getLogger("crossroads.routing")


class HealthSync:
    def __init__(self, link: Link, health: Health, interval: float = 0.25) -> None:
        self._link = link
        self._health = health
        self._interval = interval
        health.outbox = []

    def start(self) -> None:
        self._link.subscribe(f"{self._link.ns}:health", self._take)
        self._link.spawn(self._publish_forever(), "crossroads-health-publish")

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            outbox = self._health.outbox
            if not outbox:
                continue
            self._health.outbox = []
            message = orjson.dumps({"from": self._link.process_id, "outcomes": [tuple(o) for o in outbox]})
            try:
                await self._link.publish(f"{self._link.ns}:health", message)
            except SharedStateError as exc:
                self._link.warn(f"health not shared: {exc}")

    def _take(self, data: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            payload = orjson.loads(data)
            if payload["from"] == self._link.process_id:
                return
            for fields in payload["outcomes"]:
                self._health.apply(Outcome(*fields))
