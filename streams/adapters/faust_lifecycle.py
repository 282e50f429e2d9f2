"""Faust's worker and table manager, without the fixed seconds they wait at start and at exit.

Both are sleeps on the clock that nothing waits for, so each only delays: a worker's start-up
and its recovery after a crash, its exit, each step of a rolling restart, and every worker the
test suite starts and stops. faust-streaming is pinned below 0.16 for these internals.

- **Start.** Faust's TableManager sleeps a second (`on_start`, there since 2017 without a stated
  reason) before it finalises the tables and adds their changelogs to the subscription. What
  follows waits on events, not on that clock: the conductor makes the first subscription once
  the manager sets `_tables_registered`, at the end of that step, and once the agents have
  started; a table added after it is refused ("Too late to add tables"), so a late table would
  fail the start loudly rather than be missed; recovery waits for the first assignment. The
  worker's one table is declared when the app is assembled, before anything starts.
- **Exit.** mode's Worker ends its shutdown with a one-second sleep (`_sentinel_task`), after
  every service has stopped, every task has been gathered and the rest cancelled: time for the
  cancelled tasks to run their last steps. A few turns of the loop do that. By then the worker's
  own stop has committed its offsets, flushed the producer, closed RocksDB and left the group.
"""

from __future__ import annotations

import asyncio

import faust
from faust.tables import TableManager

#: how long the stopped worker's loop still runs before it closes
EXIT_GRACE_S = 0.1


class PromptTableManager(TableManager):
    async def on_start(self) -> None:  # Faust 0.15's, without its sleep
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class PromptExitWorker(faust.Worker):
    async def _sentinel_task(self) -> None:
        await asyncio.sleep(EXIT_GRACE_S)
