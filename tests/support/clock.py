"""A clock that moves only when something sleeps, for code that takes ``sleep`` and
``clock`` as collaborators."""

from __future__ import annotations

import threading
import time


class FakeTime:
    """Sleeping advances the clock and returns at once; each sleep is kept in ``sleeps``.
    With a ``server`` the simulator's clock moves too, and ``on_tick(now)`` runs after
    each sleep (to switch outages on and off)."""

    def __init__(self, start: float = 1000.0, server=None, on_tick=None):
        self.now = start
        self.sleeps: list[float] = []
        self.server = server
        self.on_tick = on_tick
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, s: float) -> None:
        with self._lock:
            self.sleeps.append(s)
            self.now += s
            now = self.now
        if self.server is not None:
            self.server.advance(s)
        if self.on_tick is not None:
            self.on_tick(now)
        time.sleep(0.0005)  # let the other threads run
