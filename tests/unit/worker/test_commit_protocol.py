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

from streams.adapters.lead_store import WATERMARK_KEY
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
    settled,
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


def process(store: MemoryStore, sender: Sender, batch: list[Message]) -> None:
    """A batch, handled and its changes acknowledged, as before a revocation."""
    pipeline = make(store, sender)
    settled(pipeline, pipeline.process_batch(batch))


def scan(store: MemoryStore, sender: Sender) -> None:
    pipeline = make(store, sender)
    settled(pipeline, pipeline.rescan({0}))


def crashed_after_the_state_was_written() -> MemoryStore:
    store = MemoryStore()
    sender = Sender(fail_on_flush=2)  # flush 1: states (durable); flush 2: outputs (lost)
    with pytest.raises(Crash):
        process(store, sender, events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED")))
    assert sender.decoded("changes") == []  # nothing reached the output topics
    state = store.get(0, "L")
    assert state is not None and [c["sequence"] for c in state.unpublished()] == [1, 2]
    return store


def test_the_scan_after_a_rebalance_publishes_the_unconfirmed_outbox():
    store = crashed_after_the_state_was_written()
    lost = store.get(0, "L").unpublished()  # type: ignore[union-attr]
    sender = Sender()
    scan(store, sender)
    assert sender.decoded("changes") == lost  # same ids, same content
    again = Sender()
    scan(store, again)
    assert again.decoded("changes") == []  # confirmed now: the next scan publishes nothing
    assert sender.decoded("stages")[-1]["sequence"] == 2


def test_the_next_event_publishes_the_outbox_before_its_own_change():
    store = crashed_after_the_state_was_written()
    sender = Sender()
    process(store, sender,
            events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"),  # replayed input: duplicates
                   ("e3", "DECISION_TIMELINE_PROVIDED")))
    assert [(c["sequence"], c["stage"]) for c in sender.decoded("changes")] == [
        (1, "cold"), (2, "warm"), (3, "hot")]


def test_a_crash_before_the_state_is_durable_replays_to_identical_changes():
    batch = events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"))  # the same bytes, replayed
    store = MemoryStore()
    with pytest.raises(Crash):
        process(store, Sender(fail_on_flush=1), batch)
    assert store.get(0, "L") is None  # nothing written locally either
    first, second = Sender(), Sender()
    process(MemoryStore(), first, batch)
    process(store, second, batch)
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
        process(store, Sender(fail_on_flush=2), events(("e1", "CONTACTED")))
    state = store.get(0, "L")
    assert state is not None and state.outbox_batch > ahead
    sender = Sender()
    scan(store, sender)
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
    process(store, Sender(), batch)
    again = [message(activity_record(f"f{i}", f"L{i}", now + 1, "PRICING_VIEWED"), offset=i)
             for i in range(300)]
    process(store, Sender(), again)  # states read, not created
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


# --- step 2 acknowledged in the background --------------------------------------------------


class HeldSender(Sender):
    """Answers each send when the test lets it (`release`), and logs what it was sent and when
    each answer came: ("sent", send number, topics) and ("answered", send number)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: list[tuple[Any, ...]] = []
        self.gates: dict[int, asyncio.Event] = {}

    def gate(self, number: int) -> asyncio.Event:
        return self.gates.setdefault(number, asyncio.Event())

    async def send(self, tolerate: Any = (), dropped: Any = None) -> Any:
        number = self.flushes + 1
        self.log.append(("sent", number, sorted({s.topic for s in self.pending})))
        answer = await super().send(tolerate, dropped)

        async def held() -> Any:
            await self.gate(number).wait()
            result = await answer
            self.log.append(("answered", number))
            return result
        return asyncio.ensure_future(held())


def lead_events(lead: str, *specs: tuple[str, str], offset: int = 0) -> list[Message]:
    now = int(time.time() * 1000) - 60_000
    return [message(activity_record(event_id, lead, now + i, activity), offset=offset + i)
            for i, (event_id, activity) in enumerate(specs)]


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def test_a_batch_returns_with_its_changes_sent_and_their_acknowledgement_still_awaited():
    store, sender = MemoryStore(), HeldSender()
    pipeline = make(store, sender)

    async def scenario() -> None:
        sender.gate(1).set()  # step 1 answered at once
        await pipeline.process_batch(lead_events("L", ("e1", "CONTACTED")))
        # the changes are on their way; nothing says they are published yet
        assert sender.log == [("sent", 1, ["leads-changelog"]), ("answered", 1),
                              ("sent", 2, ["changes", "stages"])]
        assert store.watermark(0) == 0
        sender.gate(2).set()
        await pipeline.drain()
        assert sender.log[-1] == ("answered", 2)
        assert store.watermark(0) > 0  # step 3 came after the acknowledgement
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [c["stage"] for c in sender.decoded("changes")] == ["cold"]


def test_the_next_batch_writes_no_state_before_the_last_batchs_changes_are_acknowledged():
    """Its states may have been settled against the batch in flight: written before that
    batch's changes are, a crash would lose them."""
    store, sender = MemoryStore(), HeldSender()
    pipeline = make(store, sender)
    first_batch: list[int] = []

    async def scenario() -> None:
        sender.gate(1).set()
        await pipeline.process_batch(lead_events("L", ("e1", "CONTACTED")))
        first_batch.append(store.get(0, "L").outbox_batch)  # type: ignore[union-attr]
        second = asyncio.ensure_future(pipeline.process_batch(
            lead_events("L", ("e2", "PRICING_VIEWED"), offset=1)))
        await until(lambda: len(sender.log) == 3 and not second.done())
        for _ in range(20):
            await asyncio.sleep(0)
        assert [entry[:2] for entry in sender.log] == [("sent", 1), ("answered", 1),
                                                       ("sent", 2)]  # no step 1 yet
        sender.gate(2).set()
        sender.gate(3).set()
        sender.gate(4).set()
        await second
        await pipeline.drain()
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [entry[:2] for entry in sender.log] == [
        ("sent", 1), ("answered", 1), ("sent", 2), ("answered", 2), ("sent", 3), ("answered", 3),
        ("sent", 4), ("answered", 4)]
    # each change once: the state read while the first batch was in flight dropped its outbox
    assert [(c["sequence"], c["stage"]) for c in sender.decoded("changes")] == [
        (1, "cold"), (2, "warm")]
    # the first batch's watermark went to the changelog with the second batch's states
    watermarks = [s.value for s in sender.on("leads-changelog") if s.key == WATERMARK_KEY]
    assert watermarks == [str(first_batch[0]).encode()]


def test_a_failed_publication_is_fatal_at_once_and_no_later_state_is_written():
    store, sender = MemoryStore(), HeldSender(fail_on_flush=2)
    fatal: list[BaseException] = []
    pipeline = lead_pipeline(store, sender, on_fatal=fatal.append)

    async def scenario() -> None:
        sender.gate(1).set()
        await pipeline.process_batch(lead_events("L", ("e1", "CONTACTED")))
        second = asyncio.ensure_future(pipeline.process_batch(
            lead_events("L", ("e2", "PRICING_VIEWED"), offset=1)))
        await until(lambda: len(sender.log) == 3)
        sender.gate(2).set()  # answered with a failure
        await until(lambda: fatal)
        assert isinstance(fatal[0], ConnectionError)  # told when it failed
        with pytest.raises(ConnectionError):
            await second  # and the next commit refuses to go on
        with pytest.raises(ConnectionError):
            await pipeline.drain()
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(fatal) == 1  # once, not again by each commit that finds it
    assert [entry[:2] for entry in sender.log if entry[0] == "sent"] == [("sent", 1), ("sent", 2)]
    state = store.get(0, "L")
    # the durable state is the first batch's, its change unpublished: the scan publishes it
    assert state is not None and [c["sequence"] for c in state.unpublished()] == [1]
    after = Sender()
    scan(store, after)
    assert [c["sequence"] for c in after.decoded("changes")] == [1]


def test_a_rescan_waits_for_the_batch_in_flight_before_it_reads_the_watermarks():
    store, sender = MemoryStore(), HeldSender()
    pipeline = make(store, sender)

    async def scenario() -> None:
        sender.gate(1).set()
        await pipeline.process_batch(lead_events("L", ("e1", "CONTACTED")))
        scanning = asyncio.ensure_future(pipeline.rescan({0}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not scanning.done()
        sender.gate(2).set()
        sender.gate(3).set()  # the scan's own commit
        await scanning
        await pipeline.drain()
    asyncio.run(asyncio.wait_for(scenario(), 10))
    # the scan found the change confirmed: published once, not again by the scan
    assert [c["sequence"] for c in sender.decoded("changes")] == [1]
