"""Batches of whole partitions (batch_consumer.whole_partitions): on aiokafka's own fetcher
results and its own `fetched_records`, a batch takes the fetched partitions whole while they fit,
takes one partition's fetch of up to WHOLE_PARTITION_SLACK times the batch size whole, and cuts
only a larger one, where aiokafka alone cuts whichever partition the batch size ends in."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from streams.adapters import input_records
from streams.adapters.batch_consumer import WHOLE_PARTITION_SLACK, let_go_read, whole_partitions

TOPIC = "leads-input"
MAX = 20


@pytest.fixture(autouse=True)
def input_topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(input_records.InputPartitionRecords, "input_topics",
                        frozenset({TOPIC}))
    yield


def _records(base: int, count: int, per_batch: int = 7) -> bytes:
    """`count` records from offset `base`, in batches of `per_batch`, as a live producer's
    linger makes them."""
    data = b""
    for start in range(base, base + count, per_batch):
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 10**6)
        for i in range(min(per_batch, base + count - start)):
            builder.append(i, 1_786_000_000_000, f"lead-{start + i}".encode(), b"\x02" * 40,
                           [])
        buf = builder.build()
        struct.pack_into(">q", buf, 0, start)
        data += bytes(buf)
    return data


class _State:
    """A partition's subscription state, as FetchResult reads and moves it."""

    def __init__(self, position: int, paused: bool = False) -> None:
        self.position, self.paused = position, paused

    def consumed_to(self, offset: int) -> None:
        self.position = offset


class _Assignment:
    active = True

    def __init__(self) -> None:
        self.states: dict[TopicPartition, _State] = {}

    def state_value(self, tp: TopicPartition) -> _State:
        return self.states[tp]


class Fetched:
    """aiokafka's Fetcher as far as `fetched_records` reads it: its results, in the order their
    fetches came, each aiokafka's FetchResult of this worker's InputPartitionRecords."""

    def __init__(self, topic: str = TOPIC) -> None:
        self.topic = topic
        self._records: dict[TopicPartition, Any] = {}
        self._subscriptions = type("Subscriptions", (), {"reassignment_in_progress": False,
                                                         "is_assigned": lambda _, tp: True})()
        self._wait_consume_future = None
        self.assignment = _Assignment()
        #: how often the fetch routine was told a partition can be fetched again
        self.notified = 0

    def add(self, partition: int, base: int, count: int, paused: bool = False) -> None:
        tp = TopicPartition(self.topic, partition)
        self.assignment.states[tp] = _State(base, paused)
        records = input_records.InputPartitionRecords(
            tp, MemoryRecords(_records(base, count)), [], base, None, None, True,
            fetcher.READ_UNCOMMITTED)
        self._records[tp] = fetcher.FetchResult(tp, assignment=self.assignment,
                                                partition_records=records, backoff=0)

    def _notify(self, future: Any) -> None:
        self.notified += 1

    def batch(self, max_records: int, active: set[TopicPartition] | None = None,
              let_go: bool = True) -> dict[int, list[int]]:
        """The next batch's offsets by partition, as aiokafka's `fetched_records` hands them."""
        drained = asyncio.run(fetcher.Fetcher.fetched_records(
            self, active, timeout=0, max_records=max_records))  # type: ignore[arg-type]
        if let_go:
            let_go_read(self, drained)
        return {tp.partition: [r.offset for r in records] for tp, records in drained.items()}

    def whole_batch(self, active: set[TopicPartition] | None = None) -> dict[int, list[int]]:
        return self.batch(whole_partitions(self._records, active, MAX), active)


def _sizes(batch: dict[int, list[int]]) -> dict[int, int]:
    return {partition: len(offsets) for partition, offsets in batch.items()}


def test_aiokafka_alone_cuts_every_partition_fetched_a_little_over_a_batch() -> None:
    # what a worker that is behind got: each partition's fetch in two batches
    fetched = Fetched()
    for partition in range(3):
        fetched.add(partition, 1000 * partition, 22)
    assert [_sizes(fetched.batch(MAX)) for _ in range(3)] == [
        {0: 20}, {0: 2, 1: 18}, {1: 4, 2: 16}]


def test_a_partition_fetched_a_little_over_a_batch_is_one_batch_whole() -> None:
    fetched = Fetched()
    for partition in range(3):
        fetched.add(partition, 1000 * partition, 22)
    batches = [fetched.whole_batch() for _ in range(3)]
    assert batches == [{p: list(range(1000 * p, 1000 * p + 22))} for p in range(3)]
    # each fetch read to its end is let go, and the fetch routine told: it fetches them again
    assert fetched._records == {} and fetched.notified == 3


def test_partitions_that_fit_go_whole_together_and_the_next_waits_for_the_next_batch() -> None:
    fetched = Fetched()
    fetched.add(0, 0, 5)
    fetched.add(1, 100, 6)
    fetched.add(2, 200, 12)
    assert _sizes(fetched.whole_batch()) == {0: 5, 1: 6}
    assert _sizes(fetched.whole_batch()) == {2: 12}


def test_a_partition_fetched_over_the_slack_is_cut_at_the_batch_size_as_before() -> None:
    over = int(MAX * WHOLE_PARTITION_SLACK) + 1
    fetched = Fetched()
    fetched.add(0, 0, over)
    fetched.add(1, 100, 3)
    first = fetched.whole_batch()
    assert first == {0: list(range(MAX))}
    # the rest of the cut partition, then whole the partition behind it if it fits
    assert fetched.whole_batch() == {0: list(range(MAX, over)), 1: [100, 101, 102]}


def test_the_slack_bounds_a_lone_partition_exactly() -> None:
    at_slack = int(MAX * WHOLE_PARTITION_SLACK)
    fetched = Fetched()
    fetched.add(0, 0, at_slack)
    assert _sizes(fetched.whole_batch()) == {0: at_slack}


def test_partitions_left_out_of_the_batch_are_not_counted() -> None:
    # Faust names the active partitions (a paused one is not): aiokafka skips the others
    fetched = Fetched()
    fetched.add(0, 0, 15, paused=True)
    fetched.add(1, 100, 15)
    fetched.add(2, 200, 4)
    active = {TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 2)}
    assert _sizes(fetched.whole_batch(active)) == {1: 15, 2: 4}


def test_a_fetch_read_to_its_end_counts_nothing_and_is_let_go() -> None:
    fetched = Fetched()
    fetched.add(0, 0, 14)
    # a batch of exactly its records: aiokafka alone holds on to the fetch, so the partition
    # is not fetched again until a later batch finds it empty
    assert _sizes(fetched.batch(14, let_go=False)) == {0: 14}
    assert list(fetched._records) == [TopicPartition(TOPIC, 0)] and fetched.notified == 0
    fetched.add(1, 100, 25)
    assert fetched._records[TopicPartition(TOPIC, 0)]._partition_records.remaining() == 0
    assert _sizes(fetched.whole_batch()) == {1: 25}
    assert list(fetched._records) == []


def test_a_fetch_with_records_left_is_kept() -> None:
    fetched = Fetched()
    fetched.add(0, 0, 40)
    assert _sizes(fetched.whole_batch()) == {0: MAX}
    assert list(fetched._records) == [TopicPartition(TOPIC, 0)] and fetched.notified == 0


def test_other_topics_and_fetch_errors_leave_the_batch_size_to_aiokafka() -> None:
    changelog = Fetched("app-leads-changelog")  # recovered through the same consumer
    changelog.add(0, 0, 22)
    assert whole_partitions(changelog._records, None, MAX) == MAX
    assert _sizes(changelog.batch(MAX)) == {0: MAX}  # cut, and its rest kept as aiokafka keeps it
    assert list(changelog._records) == [TopicPartition("app-leads-changelog", 0)]
    assert _sizes(changelog.batch(MAX)) == {0: 2}
    errors = Fetched()
    errors._records[TopicPartition(TOPIC, 3)] = fetcher.FetchError(error=OSError(), backoff=0)
    errors.add(0, 0, 22)
    assert whole_partitions(errors._records, None, MAX) == MAX
    assert whole_partitions({}, None, MAX) == MAX
