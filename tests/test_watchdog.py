"""The shared watchdog: checks what it watches every tick while there is any, and stops when there is none."""

from __future__ import annotations

import asyncio
import time

from crossroads.watchdog import Watchdog


class Deadline:
    def __init__(self, due: float) -> None:
        self.due = due
        self.expired = False

    def check(self, now: float) -> bool:
        if now >= self.due:
            self.expired = True
            return False
        return True


async def test_items_are_checked_until_they_end_and_the_timer_stops_with_them() -> None:
    watchdog: Watchdog[Deadline] = Watchdog(0.01, time.monotonic)
    soon, later, forgotten = (Deadline(time.monotonic() + d) for d in (0.02, 0.06, 0.02))
    for item in (soon, later, forgotten):
        watchdog.watch(item)
    watchdog.forget(forgotten)
    assert watchdog.armed
    await asyncio.sleep(0.04)
    assert soon.expired and not later.expired and not forgotten.expired
    await asyncio.sleep(0.06)
    assert later.expired and not watchdog.armed and not watchdog.watched
    watchdog.watch(Deadline(time.monotonic() + 10))
    assert watchdog.armed
    watchdog.close()
    assert not watchdog.armed
