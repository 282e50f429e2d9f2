"""Faust's table manager, its start not held up by a fixed second.

Faust's TableManager sleeps a second when it starts (`on_start`, there since 2017 without a
stated reason), before it finalises the tables and adds their changelogs to the subscription.
Nothing waits on the clock for that, only on events:

- the conductor makes the first subscription once the manager sets `_tables_registered`, at the
  end of that step, and once the agents have started;
- a table added after it is refused ("Too late to add tables"), so a late table would fail the
  start loudly rather than be missed;
- recovery, started right after it, waits for the first assignment.

The worker's one table is declared when the app is assembled, before anything starts, so the
second only delayed every start: a worker's start-up, its recovery after a crash, each restart
of a rolling deploy, and every worker the test suite starts. This is faust-streaming 0.15's
`on_start` without the sleep; pyproject pins faust-streaming below 0.16.
"""

from __future__ import annotations

from faust.tables import TableManager


class PromptTableManager(TableManager):
    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
