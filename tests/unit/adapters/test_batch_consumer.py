"""BatchConsumer's guard for fetched input it does not handle (a rebalance began, or the
partition was paused meanwhile): the consumer must go back to the first such record, because
seeking to the committed offset does nothing for a partition that never had one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.adapters.batch_consumer import BatchConsumer, BatchInput


@dataclass
class Record:
    offset: int


class FakeConsumer:
    """The parts of BatchConsumer that _unread uses."""

    def __init__(self, assigned: set[TP], fail_on: set[TP] = frozenset()) -> None:
        self.app = SimpleNamespace(batch_input=BatchInput("input", None, 20))  # type: ignore[arg-type]
        self._assigned, self._fail_on = assigned, fail_on
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return self._assigned

    async def seek(self, tp: TP, offset: int) -> None:
        if tp in self._fail_on:
            raise RuntimeError("not assigned")
        self.seeks.append((tp, offset))


def unread(consumer: FakeConsumer, records: dict[TP, list[Any]]) -> None:
    asyncio.run(BatchConsumer._unread(consumer, records))  # type: ignore[arg-type]


def test_dropped_input_is_fetched_again_from_its_first_record():
    p0, p1 = TP("input", 0), TP("input", 1)
    consumer = FakeConsumer({p0, p1})
    unread(consumer, {p0: [Record(178), Record(179)], p1: [Record(5)]})
    assert sorted(consumer.seeks) == [(p0, 178), (p1, 5)]


def test_changelogs_revoked_partitions_and_empty_lists_are_left_alone():
    p0, gone, changelog = TP("input", 0), TP("input", 3), TP("app-leads-changelog", 0)
    consumer = FakeConsumer({p0, changelog, TP("input", 2)}, fail_on={TP("input", 2)})
    unread(consumer, {changelog: [Record(0)], gone: [Record(7)], p0: [],
                      TP("input", 2): [Record(9)]})  # revoked while seeking: no error
    assert consumer.seeks == []


def test_revocation_and_shutdown_wait_for_the_batch_and_then_for_what_it_left_in_flight():
    """The worker's handler returns with its changes sent, not acknowledged: the partitions
    must not go to their next owner before they are (commit.py, step 2)."""
    order: list[str] = []

    async def scenario() -> None:
        async def batch() -> None:
            await asyncio.sleep(0.01)
            order.append("batch handled")

        async def drain() -> None:
            await asyncio.sleep(0.01)
            order.append("changes acknowledged")

        consumer = SimpleNamespace(
            app=SimpleNamespace(batch_input=BatchInput("input", None, 20, drain)),  # type: ignore[arg-type]
            _inflight=asyncio.ensure_future(batch()))
        await BatchConsumer._batch_done(consumer)  # type: ignore[arg-type]
        order.append("partitions let go")
    asyncio.run(scenario())
    assert order == ["batch handled", "changes acknowledged", "partitions let go"]
