"""Reconciles what the workers published with what went in (issue: fault tolerance).

From the input topic, the pure core computes offline what every lead's stage must be and how
every record must be classified; the verifier then checks the output topics:
- every lead's final stage equals the offline stage;
- each lead's sequences are 1..n without gaps;
- a sequence published twice carries identical content;
- input records = applied + duplicates + ignored + dead letters, where dead letters are counted
  on the DLQ by their original (partition, offset), so re-deliveries after a crash count once.
Counters inside workers cannot do the accounting: they restart from zero when a worker is killed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streams.core.definitions.compiler import CompiledDefinitions
from streams.core.lead_state import LeadState
from streams.core.stage_machine import DUPLICATE, StageMachine
from streams.wire.avro import avro_codec
from streams.wire.gate import APPLY, DEAD, IGNORE, admit


def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, up to its end offsets now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@dataclass
class Report:
    input_records: int = 0
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_expected: int = 0
    dead_published: int = 0
    leads: int = 0
    changes: int = 0
    republished: int = 0
    wrong_stages: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.wrong_stages and not self.gaps and not self.conflicts
                and self.dead_published == self.dead_expected
                and self.input_records == self.applied + self.duplicates + self.ignored
                + self.dead_expected)

    def summary(self) -> str:
        return (f"input {self.input_records} = applied {self.applied} + duplicates "
                f"{self.duplicates} + ignored {self.ignored} + dead letters {self.dead_expected}"
                f" (DLQ holds {self.dead_published} distinct); leads {self.leads}, changes "
                f"{self.changes} ({self.republished} re-emitted identically); wrong stages "
                f"{len(self.wrong_stages)}, gaps {len(self.gaps)}, conflicting re-emissions "
                f"{len(self.conflicts)}")


def verify(bootstrap: str, topics: dict[str, str], compiled: CompiledDefinitions,
           now_ms: int) -> Report:
    """`topics`: activity, changes, dlq names. `now_ms`: the gate's clock for validation."""
    report = Report()
    machine = StageMachine(compiled)
    states: dict[str, LeadState] = {}
    dead: set[tuple[int, int]] = set()
    inputs = sorted(read_all(bootstrap, topics["activity"]), key=lambda r: (r.partition, r.offset))
    for r in inputs:
        report.input_records += 1
        outcome, payload = admit(r.key, r.value, now_ms)
        if outcome == DEAD:
            dead.add((r.partition, r.offset))
            continue
        if outcome == IGNORE:
            report.ignored += 1
            continue
        assert outcome == APPLY
        state = states.setdefault(payload["lead_id"], LeadState(payload["lead_id"]))
        if machine.fold(state, payload, []) == DUPLICATE:
            report.duplicates += 1
        else:
            report.applied += 1
    report.dead_expected = len(dead)
    published_dead = set()
    for r in read_all(bootstrap, topics["dlq"]):
        headers = dict(r.headers)
        published_dead.add((int(headers["leadstage.original.partition"]),
                            int(headers["leadstage.original.offset"])))
    report.dead_published = len(published_dead & dead)

    by_seq: dict[tuple[str, int], dict[str, Any]] = {}
    for r in read_all(bootstrap, topics["changes"]):
        change = avro_codec().decode(r.value)[1]
        key = (change["lead_id"], change["sequence"])
        report.changes += 1
        if key in by_seq:
            report.republished += 1
            if by_seq[key] != change:
                report.conflicts.append(f"{key}: {by_seq[key]} != {change}")
        else:
            by_seq[key] = change
    sequences: dict[str, list[int]] = {}
    last: dict[str, dict[str, Any]] = {}
    for (lead, seq), change in by_seq.items():
        sequences.setdefault(lead, []).append(seq)
        if lead not in last or seq > last[lead]["sequence"]:
            last[lead] = change
    for lead, seqs in sequences.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            report.gaps.append(f"{lead}: {sorted(seqs)}")
    expected = {lead: s.stage for lead, s in states.items() if s.sequence}
    report.leads = len(expected)
    for lead, stage in expected.items():
        got = last.get(lead, {}).get("stage", "<no change published>")
        if got != stage:
            report.wrong_stages.append(f"{lead}: published {got}, expected {stage}")
    for lead in set(last) - set(expected):
        report.wrong_stages.append(f"{lead}: published changes, expected none")
    return report
