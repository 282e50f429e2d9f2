"""The broker the project starts is a real Kafka: clients round-trip records through it."""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import fetcher
from aiokafka.structs import ConsumerRecord
from kafka import KafkaProducer

from streams.adapters import input_records
from tests.integration.kafka_helpers import create_topics, read_topic
from tests.integration.processes import running


def test_kafka_python_round_trip(kafka_bootstrap, unique_name):
    topic = unique_name("roundtrip")
    create_topics(kafka_bootstrap, [topic], partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = {f"lead-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    records = read_topic(kafka_bootstrap, topic, want=len(sent))
    assert {r.key: r.value for r in records} == sent
    assert {r.partition for r in records} == {0, 1, 2}  # keys spread over every partition


def test_minimal_faust_app_consumes_and_produces(kafka_bootstrap, unique_name, tmp_path):
    src, dst = unique_name("echo-in"), unique_name("echo-out")
    create_topics(kafka_bootstrap, [src, dst], partitions=2)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEADSTAGE_DATA_DIR": str(tmp_path / "data"),
        "LEADSTAGE_WEB_PORT": "16067",
        "ECHO_APP_ID": unique_name("echo-app"),
        "ECHO_IN": src,
        "ECHO_OUT": dst,
    }
    with running([sys.executable, "-m", "faust", "-A", "tests.integration.apps.echo_app",
                  "worker", "-l", "info", "--without-web"], env, tmp_path / "worker.log") as worker:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for i in range(5):
            producer.send(src, key=b"k%d" % i, value=b"hello %d" % i)
        producer.flush()
        producer.close()
        records = read_topic(kafka_bootstrap, dst, want=5, timeout_s=60)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    assert sorted(r.value for r in records) == [b"HELLO %d" % i for i in range(5)]
    assert {r.key for r in records} == {b"k%d" % i for i in range(5)}


def test_the_input_topics_records_read_as_kafka_python_reads_them(kafka_bootstrap, unique_name,
                                                                  monkeypatch):
    """input_records on a real broker's fetches: plain and transactional batches (whose commit
    markers take offsets), headers, a fetch cut every 7 records; a topic not installed keeps
    aiokafka's records."""
    topic, other = unique_name("input-records"), unique_name("input-records-other")
    monkeypatch.setattr(fetcher, "PartitionRecords", fetcher.PartitionRecords)
    monkeypatch.setattr(input_records.InputPartitionRecords, "input_topics", frozenset())
    create_topics(kafka_bootstrap, [topic, other], partitions=2)
    plain = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    for i in range(40):
        plain.send(topic, key=f"lead-{i}".encode(), value=b"v" * i,
                   headers=[("source", b"web")] if i % 3 else [])
        plain.send(other, key=f"lead-{i}".encode(), value=b"o")
    plain.flush()
    plain.close()
    transactional = KafkaProducer(bootstrap_servers=kafka_bootstrap,
                                  transactional_id=unique_name("input-records-tx"))
    transactional.init_transactions()
    for round_ in range(3):
        transactional.begin_transaction()
        for i in range(5):
            transactional.send(topic, key=f"tx-{round_}-{i}".encode(), value=b"t")
        transactional.commit_transaction()
    transactional.close()
    expected = read_topic(kafka_bootstrap, topic, want=55)

    async def consume() -> tuple[list, list]:
        input_records.install([topic])
        consumer = AIOKafkaConsumer(topic, other, bootstrap_servers=kafka_bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    max_poll_records=7)
        await consumer.start()
        try:
            mine: list = []
            theirs: list = []
            while len(mine) < 55 or len(theirs) < 40:
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    assert len(records) <= 7
                    (mine if tp.topic == topic else theirs).extend(records)
            return mine, theirs
        finally:
            await consumer.stop()

    mine, theirs = asyncio.run(consume())
    assert {type(r) for r in mine} == {input_records.InputRecord}
    assert {type(r) for r in theirs} == {ConsumerRecord}

    def fields(r):
        return r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers)

    assert sorted(fields(r) for r in mine) == sorted(fields(r) for r in expected)
    assert {r.topic for r in mine} == {topic}
    # the commit markers took offsets of their own, which no record has
    assert sum(max(r.offset for r in mine if r.partition == p) + 1 for p in (0, 1)) > len(mine)
