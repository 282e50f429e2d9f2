"""Self-fencing after a pause: a worker frozen past its group session timeout (SIGSTOP, a
suspended VM, a long stop-the-world) has lost its partitions to another worker. If it resumed
and finished a batch it would publish changes and changelog writes for leads it no longer owns,
possibly older than the new owner's. Kafka's own fence would be a transactional producer, which
faust-streaming's exactly_once does not do reliably; instead the worker fences itself: a ticker
on the event loop, and every commit step, check how long the loop was away, and a gap near the
session timeout ends the process before it writes anything. The replay after restart is safe.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
EXIT_PAUSED = 75


def exit_paused(gap_s: float) -> None:
    log.critical("the worker was paused for %.1f s, past its session: its partitions may "
                 "belong to another worker now; stopping without writing", gap_s)
    logging.shutdown()
    os._exit(EXIT_PAUSED)


class PauseFence:
    def __init__(self, threshold_s: float, on_paused: Callable[[float], Any] = exit_paused,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold_s = threshold_s
        self.on_paused = on_paused
        self.clock = clock
        self._last: float | None = None  # armed by the first tick, once the loop runs

    def tick(self) -> None:
        """Called every second by a timer on the event loop."""
        self.check()
        self._last = self.clock()

    def check(self) -> None:
        if self._last is None:
            return
        gap = self.clock() - self._last
        if gap > self.threshold_s:
            self.on_paused(gap)
