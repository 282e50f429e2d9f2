"""The commit protocol, crashed at its worst moment: state durable, changes not yet published.

The next process must publish the outbox: on the scan after the rebalance, or when the lead is
next touched, with the same event ids and content, before any newer change."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from streams import processor as processor_module
from streams.avro_codec import registry
from streams.definitions.compiler import compile_definitions
from streams.definitions.loader import load_file
from streams.lead_state import LeadState, dumps, loads
from streams.metrics import Metrics
from streams.processor import Outputs, Processor
from streams.stage_machine import StageMachine

OUT = Outputs("changes", "stages", "dlq")


class MemoryStore:
    changelog_topic = "leads-changelog"

    def __init__(self) -> None:
        self.dbs: dict[int, dict[str, bytes]] = defaultdict(dict)

    def get(self, partition: int, lead_id: str) -> LeadState | None:
        raw = self.dbs[partition].get(lead_id)
        return None if raw is None else loads(raw)

    encode = staticmethod(dumps)

    def put_local_many(self, entries: Any, persisted: dict[int, int]) -> None:
        for partition, lead_id, value in entries:
            self.dbs[partition][lead_id] = value

    def items(self, partition: int) -> Any:
        return [(k, loads(v)) for k, v in self.dbs[partition].items() if k != "watermark"]

    def watermark(self, partition: int) -> int:
        return int(self.dbs[partition].get("watermark", b"0"))

    def put_watermark_local(self, partition: int, value: bytes) -> None:
        self.dbs[partition]["watermark"] = value


class Crash(Exception):
    pass


class Sender:
    """Records what is flushed; can fail its n-th flush (everything in it is lost)."""

    def __init__(self, fail_on_flush: int | None = None) -> None:
        self.fail_on_flush = fail_on_flush
        self.flushes = 0
        self.pending: list[tuple[str, bytes | None, bytes | None]] = []
        self.published: list[tuple[str, bytes | None, bytes | None]] = []

    async def prepare(self, topics: list[str]) -> None:
        pass

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: Any = None, partition: int | None = None) -> None:
        self.pending.append((topic, key, value))

    async def flush(self) -> dict:
        self.flushes += 1
        batch, self.pending = self.pending, []
        if self.flushes == self.fail_on_flush:
            raise ConnectionError("broker gone")
        self.published += batch
        return {}

    def changes(self) -> list[dict[str, Any]]:
        return [registry().decode(v)[1] for t, _, v in self.published if t == "changes"]


@dataclass
class Message:
    key: bytes
    value: bytes
    topic: str = "activity"
    partition: int = 0
    offset: int = 0


def events(*specs: tuple[str, str]) -> list[Message]:
    now = int(time.time() * 1000) - 60_000
    out = []
    for i, (event_id, activity) in enumerate(specs):
        record = {"event_id": event_id, "lead_id": "L", "occurred_at": now + i, "source": "WEB",
                  "activity": activity, "decision_by": now // 86_400_000 + 30, "amount": None,
                  "currency": None, "team": None, "assessed_stage": None, "reason": None,
                  "attributes": {}}
        out.append(Message(b"L", registry().encode("LeadActivity", record), offset=i))
    return out


def make(store: MemoryStore, sender: Sender) -> Processor:
    machine = StageMachine(compile_definitions(load_file("definitions/lead-stages.yaml")))
    return Processor(machine, store, OUT, Metrics(), sender)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def crash_instead_of_exit(monkeypatch):
    def exit_(code: int) -> None:
        raise Crash(code)

    monkeypatch.setattr(processor_module.os, "_exit", exit_)


def crashed_after_the_state_was_written() -> MemoryStore:
    store = MemoryStore()
    sender = Sender(fail_on_flush=2)  # flush 1: states (durable); flush 2: outputs (lost)
    with pytest.raises(Crash):
        asyncio.run(make(store, sender).process_batch(
            events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"))))
    assert sender.changes() == []  # nothing reached the output topics
    state = store.get(0, "L")
    assert state is not None and [c["sequence"] for c in state.outbox] == [1, 2]
    return store


def test_the_scan_after_a_rebalance_publishes_the_unconfirmed_outbox():
    store = crashed_after_the_state_was_written()
    lost = store.get(0, "L").outbox  # type: ignore[union-attr]
    sender = Sender()
    asyncio.run(make(store, sender).rescan({0}))
    assert sender.changes() == lost  # same ids, same content
    again = Sender()
    asyncio.run(make(store, again).rescan({0}))
    assert again.changes() == []  # confirmed now: the next scan publishes nothing
    stages = [(t, v) for t, _, v in sender.published if t == "stages"]
    assert registry().decode(stages[-1][1])[1]["sequence"] == 2


def test_the_next_event_publishes_the_outbox_before_its_own_change():
    store = crashed_after_the_state_was_written()
    sender = Sender()
    asyncio.run(make(store, sender).process_batch(
        events(("e1", "CONTACTED"), ("e2", "PRICING_VIEWED"),  # replayed input: duplicates
               ("e3", "DECISION_TIMELINE_PROVIDED"))))
    assert [(c["sequence"], c["stage"]) for c in sender.changes()] == [
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
    assert first.changes() == second.changes() and len(first.changes()) == 2
