"""The broker the project starts is a real Kafka: clients round-trip records through it."""

from __future__ import annotations

import sys

from kafka import KafkaProducer

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
