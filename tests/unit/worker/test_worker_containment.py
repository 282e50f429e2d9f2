"""A failure in one lead stays in that lead; only a Kafka write failure ends the worker.

Driven through the worker's public pipeline (process_batch, sweep, rescan) with the real gate,
codecs, stage machine and size limits, and the shared in-memory fakes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams.core.lead_state import MAX_STATE_BYTES, OUTBOX_LIMIT, LeadState
from streams.core.stage_machine import StageMachine
from streams.wire.gate import DLQ_RECORD_LIMIT
from streams.worker.pipeline import LeadPipeline
from tests.fakes import (
    Fatal,
    MemoryStore,
    Message,
    Sender,
    activity_record,
    default_definitions,
    lead_pipeline,
    message,
    settled,
)

NOW = int(time.time() * 1000)


class BrokenFor(StageMachine):
    """The real machine, except that it raises for one lead (a bug we have not found yet)."""

    def __init__(self, lead_id: str, where: str = "apply") -> None:
        super().__init__(default_definitions())
        self.bad, self.where = lead_id, where

    def apply(self, state: LeadState, event: dict[str, Any], signals: list) -> str:
        if self.where == "apply" and state.lead_id == self.bad:
            raise ValueError("year 10183 is out of range")
        return super().apply(state, event, signals)

    def advance(self, state: LeadState, until: int, signals: list) -> None:
        if self.where == "advance" and state.lead_id == self.bad:
            raise ValueError("year 10183 is out of range")
        super().advance(state, until, signals)


def worker(machine: StageMachine | None = None, store: MemoryStore | None = None,
           sender: Sender | None = None, partitions: int = 1) -> tuple[LeadPipeline, Sender]:
    sender = sender or Sender(partitions=partitions)
    return lead_pipeline(store, sender, machine=machine), sender


def value(pipeline: LeadPipeline, name: str, **labels: str) -> float:
    return pipeline.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_lead_that_fails_has_its_events_dead_lettered_at_their_offsets_and_others_go_on():
    pipeline, sender = worker(BrokenFor("BAD"))
    batch = [message(activity_record("b1", "BAD", NOW - 5000), offset=10),
             message(activity_record("g1", "GOOD", NOW - 4000), offset=11),
             message(activity_record("b2", "BAD", NOW - 3000, "PRICING_VIEWED"), offset=12)]
    settled(pipeline, pipeline.process_batch(batch))
    assert [c["lead_id"] for c in sender.decoded("changes")] == ["GOOD"]
    dead = sender.on("dlq")
    assert [d.value for d in dead] == [batch[0].value, batch[2].value]  # the original bytes
    headers = [dict(d.headers) for d in dead]
    assert [h["leadstage.original.offset"] for h in headers] == [b"10", b"12"]
    assert {h["leadstage.original.topic"] for h in headers} == {b"activity"}
    assert {h["leadstage.error.reason"] for h in headers} == {b"processing_error"}
    assert value(pipeline, "leadstage_events_total", source="WEB", activity="CONTACTED",
                 outcome="applied") == 1  # GOOD's event only: a dead letter is not "applied"
    assert value(pipeline, "leadstage_lead_failures_total", where="event") == 1
    assert "year 10183" in pipeline.quarantined["BAD"]
    assert pipeline.store.get(0, "BAD") is None  # nothing half-applied was written


def test_a_lead_whose_sweep_fails_is_quarantined_and_the_sweep_goes_on():
    store = MemoryStore()
    pipeline, _ = worker(store=store)
    # Both leads turn warm now and fall back to cold when the 90-day window expires.
    settled(pipeline, pipeline.process_batch([
        message(activity_record(f"{lead}-{i}", lead, NOW - 1000 + i, kind), offset=i)
        for lead in ("BAD", "GOOD")
        for i, kind in enumerate(["CONTACTED", "PRICING_VIEWED"])]))
    swept_to = NOW + 91 * 86_400_000
    pipeline2, sender2 = worker(BrokenFor("BAD", where="advance"), store)
    settled(pipeline2, pipeline2.rescan({0}))
    assert settled(pipeline2, pipeline2.sweep(now=swept_to)) == 2
    assert [(c["lead_id"], c["stage"], c["cause"]) for c in sender2.decoded("changes")] == [
        ("GOOD", "cold", "TIME")]
    assert pipeline2.quarantined["BAD"].startswith("sweep failed: ValueError: year 10183")
    assert value(pipeline2, "leadstage_lead_failures_total", where="sweep") == 1
    assert value(pipeline2, "leadstage_quarantined_leads") == 1
    # not retried every sweep
    assert settled(pipeline2, pipeline2.sweep(now=swept_to + 86_400_000)) == 0


def test_an_unreadable_state_is_quarantined_by_the_scan_and_the_rest_recover():
    store = MemoryStore()
    pipeline, _ = worker(store=store)
    settled(pipeline, pipeline.process_batch([message(activity_record("g1", "GOOD", NOW - 1000))]))
    store.dbs[0]["CORRUPT"] = b"\x93\x01\x02"  # msgpack, but not a lead state
    again, _ = worker(store=store)
    settled(again, again.rescan({0}))
    assert again.ready and again.stage_counts[0]["cold"] == 1
    assert "scan failed" in again.quarantined["CORRUPT"]


def test_records_on_another_partition_than_their_key_are_rerouted_not_applied():
    pipeline, sender = worker(partitions=8)
    record = activity_record("e1", "L-42", NOW - 1000)
    right = message(record, offset=7, partitions=8)
    wrong = Message(right.key, right.value, partition=(right.partition + 1) % 8, offset=7)
    settled(pipeline, pipeline.process_batch([wrong]))
    assert sender.decoded("changes") == []  # no second copy of the lead grew
    (moved,) = sender.on("activity")
    assert (moved.partition, moved.key, moved.value) == (right.partition, right.key, right.value)
    assert dict(moved.headers)["leadstage.rerouted.from"] == f"{wrong.partition}:7".encode()
    assert value(pipeline, "leadstage_events_rerouted_total") == 1
    settled(pipeline, pipeline.process_batch(
        [Message(moved.key, moved.value, partition=moved.partition)]))
    assert [c["stage"] for c in sender.decoded("changes")] == ["cold"]


@pytest.mark.parametrize(("key", "reason"), [(None, b"missing_key"), (b"L-7", b"key_mismatch")])
def test_a_record_without_its_lead_id_as_key_is_dead_lettered(key, reason):
    pipeline, sender = worker()
    settled(pipeline, pipeline.process_batch(
        [message(activity_record("e1", "L-1", NOW - 1000), key=key)]))
    assert sender.decoded("changes") == []
    assert dict(sender.on("dlq")[0].headers)["leadstage.error.reason"] == reason


def test_a_lead_with_many_changes_in_one_fetch_is_committed_in_rounds_losing_none():
    pipeline, sender = worker()
    # Every 100 days: interest (warm), then the window expires (cold) before the next event.
    day = 86_400_000
    start = NOW - 40 * 100 * day
    batch = [message(activity_record("c", "L", start, "CONTACTED"), offset=0)]
    batch += [message(activity_record(f"p{i}", "L", start + i * 100 * day, "PRICING_VIEWED"),
                      offset=i) for i in range(1, 40)]
    settled(pipeline, pipeline.process_batch(batch))
    changes = sender.decoded("changes")
    assert len(changes) > 3 * OUTBOX_LIMIT
    assert [c["sequence"] for c in changes] == list(range(1, len(changes) + 1))
    assert sender.flushes >= 2 * (len(changes) // OUTBOX_LIMIT)  # several commits
    stored = pipeline.store.get(0, "L")
    assert stored is not None and stored.sequence == len(changes)


def test_one_lead_flooding_long_ids_keeps_its_state_under_the_bound():
    pipeline, _ = worker()
    # 4,500 events of one lead within 30 days, each id 256 characters: the state that once
    # passed 1 MB and stopped the partition.
    batch = [message(activity_record(f"{i:0256d}", "L", NOW - 20 * 86_400_000 + i * 1000,
                                     "PAGE_VIEWED"), offset=i) for i in range(4500)]
    settled(pipeline, pipeline.process_batch(batch))
    raw = pipeline.store.dbs[0]["L"]  # type: ignore[attr-defined]
    assert len(raw) < 128 * 1024 < MAX_STATE_BYTES
    assert value(pipeline, "leadstage_lead_state_trimmed_total", part="event_ids") > 0
    # De-duplication still holds within the ids kept.
    settled(pipeline, pipeline.process_batch(batch[-10:]))
    assert value(pipeline, "leadstage_events_total", source="WEB", activity="PAGE_VIEWED",
                 outcome="duplicate") == 10


def test_a_huge_poison_record_is_dead_lettered_cut_to_fit_with_its_original_size():
    pipeline, sender = worker()
    garbage = bytes(range(256)) * 4095  # 1,048,320 bytes: the broker accepts it as input
    settled(pipeline, pipeline.process_batch([Message(b"L1", garbage, offset=3)]))
    (dead,) = sender.on("dlq")  # the fake broker refuses anything over 1 MiB
    headers = dict(dead.headers)
    assert dead.size <= DLQ_RECORD_LIMIT
    assert headers["leadstage.truncated"] == b"value"
    assert headers["leadstage.original.size"] == str(len(garbage) + 2).encode()
    assert headers["leadstage.error.reason"] == b"oversized"
    assert dead.value == garbage[:len(dead.value or b"")]


def test_a_dead_letter_the_broker_still_refuses_is_skipped_counted_and_not_fatal():
    pipeline, sender = worker(sender=Sender(refuse_topics=frozenset({"dlq"})))
    settled(pipeline, pipeline.process_batch([Message(b"L1", b"garbage", offset=0),
                                 message(activity_record("e1", "L1", NOW - 1000), offset=1)]))
    assert [c["stage"] for c in sender.decoded("changes")] == ["cold"]
    assert value(pipeline, "leadstage_dead_letters_dropped_total") == 1


def test_only_a_kafka_write_failure_ends_the_worker_and_it_says_what_failed():
    pipeline, _ = worker(sender=Sender(refuse_topics=frozenset({"changes"})))
    with pytest.raises(Fatal, match="bytes to changes"):
        settled(pipeline, pipeline.process_batch(
            [message(activity_record("e1", "L1", NOW - 1000))]))


def test_a_metrics_failure_after_publishing_is_counted_not_fatal(monkeypatch):
    pipeline, sender = worker()

    def broken(*args: Any) -> None:
        raise RuntimeError("label lock poisoned")

    monkeypatch.setattr("streams.worker.pipeline.record_signals", broken)
    settled(pipeline, pipeline.process_batch([message(activity_record("e1", "L1", NOW - 1000))]))
    assert [c["stage"] for c in sender.decoded("changes")] == ["cold"]
    assert value(pipeline, "leadstage_lead_failures_total", where="metrics") == 1


@pytest.mark.parametrize("amount", [-1.0, float("-inf"), float("inf"), float("nan")])
def test_amounts_no_counter_can_take_are_dead_lettered_not_fatal(amount):
    pipeline, sender = worker()
    won = message(activity_record("w", "L1", NOW - 1000, "DEAL_WON", amount=amount), offset=0)
    good = message(activity_record("c", "L1", NOW - 900, "CONTACTED"), offset=1)
    settled(pipeline, pipeline.process_batch([won, good]))
    assert dict(sender.on("dlq")[0].headers)["leadstage.error.reason"] == b"invalid_amount"
    assert [c["stage"] for c in sender.decoded("changes")] == ["cold"]
    assert value(pipeline, "leadstage_deal_amount_total", stage="cold") == 0


def test_the_lag_of_every_applied_event_and_only_those_is_observed():
    pipeline, _ = worker(BrokenFor("BAD"))
    now = int(time.time() * 1000)
    batch = [message(activity_record("g1", "GOOD", now - 90_000), offset=1),
             message(activity_record("g2", "GOOD", now - 2000, "PRICING_VIEWED"), offset=2),
             message(activity_record("b1", "BAD", now - 1000), offset=3),  # dead-lettered
             Message(b"X", b"garbage", offset=4)]
    settled(pipeline, pipeline.process_batch(batch))
    assert value(pipeline, "leadstage_event_lag_seconds_count") == 2
    assert 92 <= value(pipeline, "leadstage_event_lag_seconds_sum") < 100
    assert value(pipeline, "leadstage_event_lag_seconds_bucket", le="60.0") == 1


class BrokenAt(StageMachine):
    """The real machine, except that it raises for one event."""

    def __init__(self, event_id: str) -> None:
        super().__init__(default_definitions())
        self.bad = event_id

    def apply(self, state: LeadState, event: dict[str, Any], signals: list) -> str:
        if event["event_id"] == self.bad:
            raise ValueError("a bug in the second event's path")
        return super().apply(state, event, signals)


def test_a_lead_failing_on_a_later_event_has_none_of_its_events_counted_or_timed():
    pipeline, sender = worker(BrokenAt("b2"))
    now = int(time.time() * 1000)
    batch = [message(activity_record("g1", "GOOD", now - 90_000), offset=1),
             message(activity_record("b1", "BAD", now - 50_000), offset=2),  # folded in, then
             message(activity_record("b2", "BAD", now - 1000, "PRICING_VIEWED"), offset=3)]
    settled(pipeline, pipeline.process_batch(batch))
    assert len(sender.on("dlq")) == 2  # both of BAD's events, the first one included
    assert value(pipeline, "leadstage_event_lag_seconds_count") == 1  # GOOD's only
    assert 89 <= value(pipeline, "leadstage_event_lag_seconds_sum") < 100
    assert value(pipeline, "leadstage_events_total", source="WEB", activity="CONTACTED",
                 outcome="applied") == 1
