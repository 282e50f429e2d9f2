"""A fetch is handled in parts of whole partitions, each committed before the next is decoded:
the worker's peak memory is one part's decoded events and states, and a lead's events in the
fetch still cost one state read and one write (a lead lives in one partition)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams.worker import pipeline as pipeline_module
from streams.worker.pipeline import PART_RECORDS, LeadPipeline
from tests.fakes import (
    MemoryStore,
    Message,
    Sender,
    activity_record,
    lead_pipeline,
    message,
    settled,
)

NOW = int(time.time() * 1000)
PARTITIONS = 4


class TracingStore(MemoryStore):
    """Logs every state read and write, in the order the pipeline does them."""

    def __init__(self, trace: list[tuple[str, int]]) -> None:
        super().__init__()
        self.trace = trace

    def get_raw_many(self, partition: int, lead_ids: list[str]) -> list[bytes | None]:
        self.trace.extend(("read", partition) for _ in lead_ids)
        return super().get_raw_many(partition, lead_ids)

    def put_local_many(self, entries: Any, persisted: dict[int, int]) -> None:
        entries = list(entries)
        self.trace.extend(("write", partition) for partition, _, _ in entries)
        super().put_local_many(entries, persisted)


def traced_worker(monkeypatch: pytest.MonkeyPatch, part_records: int
                  ) -> tuple[LeadPipeline, TracingStore, list[tuple[str, int]]]:
    trace: list[tuple[str, int]] = []
    store = TracingStore(trace)
    admit = pipeline_module.admit

    def decoding(key: bytes | None, value: bytes | None, now: int, codec: Any = None) -> Any:
        outcome, payload = admit(key, value, now, codec)
        trace.append(("decode", payload["lead_id"]))
        return outcome, payload

    monkeypatch.setattr(pipeline_module, "admit", decoding)
    pipeline = lead_pipeline(store, Sender(partitions=PARTITIONS), part_records=part_records)
    return pipeline, store, trace


def fetch(leads_per_partition: int, events_per_lead: int) -> tuple[list[Message], dict[str, int]]:
    """Records of leads spread over PARTITIONS partitions, interleaved as a fetch returns them
    (partition by partition, each in offset order); and each lead's partition."""
    by_partition: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    n = 0
    while min(len(leads) for leads in by_partition.values()) < leads_per_partition:
        lead = f"L{n}"
        n += 1
        partition = message(activity_record(lead_id=lead), partitions=PARTITIONS).partition
        if len(by_partition[partition]) < leads_per_partition:
            by_partition[partition].append(lead)
    records: list[Message] = []
    home: dict[str, int] = {}
    for partition, leads in by_partition.items():
        offset = 0
        for i in range(events_per_lead):
            for lead in leads:
                home[lead] = partition
                activity = "CONTACTED" if i == 0 else "PRICING_VIEWED"
                rec = message(activity_record(f"{lead}-{i}", lead, NOW - 60_000 + i * 1000,
                                              activity), offset=offset, partitions=PARTITIONS)
                records.append(rec)
                offset += 1
    return records, home


def test_each_part_is_committed_before_the_next_is_decoded(monkeypatch):
    records, home = fetch(leads_per_partition=2, events_per_lead=2)  # 4 records per partition
    pipeline, _, trace = traced_worker(monkeypatch, part_records=8)
    settled(pipeline, pipeline.process_batch(records))
    # Two parts of two partitions each: decode, read and write the first, then the second.
    steps = []
    for step, what in trace:
        partition = home[what] if step == "decode" else what
        label = (step, partition // 2)
        if not steps or steps[-1] != label:
            steps.append(label)
    assert steps == [("decode", 0), ("read", 0), ("write", 0),
                     ("decode", 1), ("read", 1), ("write", 1)]


def test_a_leads_events_in_the_fetch_cost_one_read_and_one_write(monkeypatch):
    records, home = fetch(leads_per_partition=3, events_per_lead=4)  # 12 records per partition
    pipeline, store, trace = traced_worker(monkeypatch, part_records=5)  # one partition a part
    settled(pipeline, pipeline.process_batch(records))
    reads = [p for step, p in trace if step == "read"]
    writes = [p for step, p in trace if step == "write"]
    assert sorted(reads) == sorted(writes) == sorted(home.values())  # once per lead
    for lead, partition in home.items():
        state = store.get(partition, lead)
        assert state is not None and state.stage is not None
        # every event of the fetch folded in
        assert all(state.history.is_duplicate(f"{lead}-{i}") for i in range(4)), lead


def test_a_small_fetch_is_one_commit(monkeypatch):
    records, _ = fetch(leads_per_partition=5, events_per_lead=1)
    assert len(records) < PART_RECORDS
    pipeline, _, trace = traced_worker(monkeypatch, part_records=PART_RECORDS)
    sender = pipeline.sender
    settled(pipeline, pipeline.process_batch(records))
    assert sender.flushes == 2  # step 1 and step 2 of one commit  # type: ignore[attr-defined]
    assert [step for step, _ in trace].count("write") == len(records)
