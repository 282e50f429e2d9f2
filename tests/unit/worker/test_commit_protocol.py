"""The commit protocol, crashed at its worst moment: state durable, changes not yet published.

The next process must publish the outbox: on the scan after the rebalance, or when the lead is
next touched, with the same event ids and content, before any newer change."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import msgspec
import pytest

from streams.core.lead_state import LeadState
from streams.worker.commit import CommitProtocol, LeadUpdate
from streams.worker.pipeline import LeadPipeline
from tests.fakes import (
    OUTPUTS,
    MemoryStore,
    Message,
    Sender,
    activity_record,
    lead_pipeline,
    message,
)


class Crash(Exception):
    pass


def events(*specs: tuple[str, str]) -> list[Message]:
    now = int(time.time() * 1000) - 60_000
    return [message(activity_record(event_id, "L", now + i, activity,
                                    decision_by=now // 86_400_000 + 30), offset=i)
            for i, (event_id, activity) in enumerate(specs)]


def make(store: MemoryStore, sender: Sender) -> LeadPipeline:
    return lead_pipeline(store, sender, on_fatal=crash)


def crash(exc: BaseException) -> None:
    raise Crash(exc)


def crashed_after_the_state_was_written() -> MemoryStore:
    store = MemoryStore()
    sender = Sender(fail_on_flush=2)  # flush 1: states (durable); flush 2: outputs (lost)
    with pytest.raises(Crash):
        asyncio.run(make(store, sender).process_batch(
            events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"))))
    assert sender.decoded("changes") == []  # nothing reached the output topics
    state = store.get(0, "L")
    assert state is not None and [c["sequence"] for c in state.unpublished()] == [1, 2]
    return store


def test_the_scan_after_a_rebalance_publishes_the_unconfirmed_outbox():
    store = crashed_after_the_state_was_written()
    lost = store.get(0, "L").unpublished()  # type: ignore[union-attr]
    sender = Sender()
    asyncio.run(make(store, sender).rescan({0}))
    assert sender.decoded("changes") == lost  # same ids, same content
    again = Sender()
    asyncio.run(make(store, again).rescan({0}))
    assert again.decoded("changes") == []  # confirmed now: the next scan publishes nothing
    assert sender.decoded("stages")[-1]["sequence"] == 2


def test_the_next_event_publishes_the_outbox_before_its_own_change():
    store = crashed_after_the_state_was_written()
    sender = Sender()
    asyncio.run(make(store, sender).process_batch(
        events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"),  # replayed input: duplicates
               ("e3", "DECISION_TIMELINE_PROVIDED"))))
    assert [(c["sequence"], c["stage"]) for c in sender.decoded("changes")] == [
        (1, "cold"), (2, "warm"), (3, "hot")]


def test_a_crash_before_the_state_is_durable_replays_to_identical_changes():
    batch = events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"))  # the same bytes, replayed
    store = MemoryStore()
    with pytest.raises(Crash):
        asyncio.run(make(store, Sender(fail_on_flush=1)).process_batch(batch))
    assert store.get(0, "L") is None  # nothing written locally either
    first, second = Sender(), Sender()
    asyncio.run(make(MemoryStore(), first).process_batch(batch))
    asyncio.run(make(store, second).process_batch(batch))
    assert first.decoded("changes") == second.decoded("changes")
    assert len(first.decoded("changes")) == 2


def test_a_batch_is_past_a_watermark_it_reads_for_the_first_time():
    """A partition's watermark written by a worker whose clock ran an hour ahead, and read by
    no scan yet: the new batch must still count as unpublished until it is, or a crash between
    writing the state and publishing would lose its changes."""
    store = MemoryStore()
    ahead = int(time.time() * 1000) + 3_600_000
    store.put_watermark_local(0, str(ahead).encode())
    with pytest.raises(Crash):
        asyncio.run(make(store, Sender(fail_on_flush=2)).process_batch(
            events(("e1", "CONTACTED"))))
    state = store.get(0, "L")
    assert state is not None and state.outbox_batch > ahead
    sender = Sender()
    asyncio.run(make(store, sender).rescan({0}))
    assert [c["sequence"] for c in sender.decoded("changes")] == [1]


class CountingStore(MemoryStore):
    """Counts the decoded lead states alive when a commit writes the states locally."""

    def __init__(self) -> None:
        super().__init__()
        self.alive_at_write: list[int] = []

    def put_local_many(self, entries: Any, persisted: dict[int, int]) -> None:
        self.alive_at_write.append(sum(isinstance(o, LeadState) for o in gc.get_objects()))
        super().put_local_many(entries, persisted)


def test_a_part_lets_each_lead_s_decoded_state_go_before_the_next_is_read():
    """A part's states are encoded lead by lead, not all held until the commit: the worker's
    peak memory and its cache misses would grow with the part otherwise (bench/README.md)."""
    store = CountingStore()
    now = int(time.time() * 1000) - 60_000
    batch = [message(activity_record(f"e{i}", f"L{i}", now, "CONTACTED"), offset=i)
             for i in range(300)]
    asyncio.run(make(store, Sender()).process_batch(batch))
    again = [message(activity_record(f"f{i}", f"L{i}", now + 1, "PRICING_VIEWED"), offset=i)
             for i in range(300)]
    asyncio.run(make(store, Sender()).process_batch(again))  # states read, not created
    assert len(store.alive_at_write) == 2
    assert max(store.alive_at_write) <= 2, store.alive_at_write


def test_a_lead_of_a_partition_the_open_batch_is_not_past_is_refused_not_built():
    """A batch opened before a partition's watermark was read, which turns out to be ahead of
    it: building a lead of that partition into it would make its changes look published."""
    store = MemoryStore()
    store.put_watermark_local(1, str(int(time.time() * 1000) + 3_600_000).encode())
    commits = CommitProtocol(store, Sender(), OUTPUTS)  # type: ignore[arg-type]
    commits.open((0,))
    state = LeadState("L", outbox=[msgspec.Raw(msgspec.msgpack.encode({"sequence": 1}))])
    with pytest.raises(RuntimeError, match="watermark"):
        commits.build(LeadUpdate(1, state, None))
    assert commits.build(LeadUpdate(0, LeadState("M"), None)).lead_id == "M"
