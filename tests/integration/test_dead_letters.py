"""Poison records through the input gate end up on the DLQ topic with their story in headers."""

from __future__ import annotations

import time

from kafka import KafkaProducer

from streams.wire.avro import avro_codec
from streams.wire.gate import APPLY, DEAD, admit
from streams.worker.dead_letters import DeadLetterRouter
from streams.worker.metrics import Metrics
from tests.integration.kafka_helpers import create_topics, read_topic


def test_poison_records_reach_the_dlq_with_headers_and_are_counted(kafka_bootstrap, unique_name):
    source, dlq = unique_name("activity"), unique_name("dlq")
    create_topics(kafka_bootstrap, [source, dlq])
    now = int(time.time() * 1000)
    good = avro_codec().encode("LeadActivity", {
        "event_id": "e1", "lead_id": "L1", "occurred_at": now, "source": "WEB",
        "activity": "CONTACTED", "decision_by": None, "amount": None, "currency": None,
        "team": None, "assessed_stage": None, "reason": None, "attributes": {}})
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for key, value in [(b"L1", b"garbage"), (b"L1", good), (b"L9", good),
                       (b"L1", b"\xc3\x01" + bytes(9))]:
        raw.send(source, key=key, value=value)
    raw.flush()

    metrics = Metrics()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    router = DeadLetterRouter(
        lambda t, k, v, h: producer.send(t, key=k, value=v, headers=h), dlq, metrics)
    outcomes = []
    for r in read_topic(kafka_bootstrap, source, want=4):
        outcome, payload = admit(r.key, r.value, now)
        outcomes.append(outcome)
        if outcome == DEAD:
            router.route(payload, r.topic, r.partition, r.offset)
    producer.flush()
    assert outcomes == [DEAD, APPLY, DEAD, DEAD]

    dead = read_topic(kafka_bootstrap, dlq, want=3)
    assert [(r.key, r.value) for r in dead] == [(b"L1", b"garbage"), (b"L9", good),
                                                (b"L1", b"\xc3\x01" + bytes(9))]
    headers = [dict(r.headers) for r in dead]
    assert [h["leadstage.error.reason"] for h in headers] == [
        b"undecodable", b"key_mismatch", b"unknown_fingerprint"]
    assert [h["leadstage.original.offset"] for h in headers] == [b"0", b"2", b"3"]
    assert {h["leadstage.original.topic"] for h in headers} == {source.encode()}
    sample = metrics.registry.get_sample_value
    assert sample("leadstage_dead_letters_total", {"reason": "undecodable"}) == 1
    assert sample("leadstage_dead_letters_total", {"reason": "key_mismatch"}) == 1
    assert sample("leadstage_dead_letters_total", {"reason": "unknown_fingerprint"}) == 1
