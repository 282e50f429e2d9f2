"""Faust's worker, its exit not held up by a fixed second.

mode's Worker ends its shutdown with a one-second sleep (`_sentinel_task`), after every service
has stopped, every task has been gathered and the rest cancelled: time for the cancelled tasks
to run their last steps. A few turns of the loop do that. By then the worker's own stop has
committed its offsets, flushed the producer, closed RocksDB and left the group, so the second
only delays the exit: a rolling restart of N workers waits N seconds more, and so does the
test suite for every worker it stops.
"""

from __future__ import annotations

import asyncio

import faust

#: how long the stopped worker's loop still runs before it closes
EXIT_GRACE_S = 0.1


class PromptExitWorker(faust.Worker):
    async def _sentinel_task(self) -> None:
        await asyncio.sleep(EXIT_GRACE_S)
