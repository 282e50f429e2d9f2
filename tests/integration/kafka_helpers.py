"""Small kafka-python helpers for integration tests (topic creation, reading a topic back)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from streams.adapters.topics import create_led


def create_topics(bootstrap: str, names: list[str], partitions: int = 1,
                  config: dict[str, str] | None = None, timeout_s: float = 10.0) -> None:
    """Create the topics and wait until the broker's metadata shows them led, as the worker
    does (adapters/topics.create_led): until then the broker answers for them as for no
    topic."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    specs = [NewTopic(n, partitions, 1, topic_configs=config or {}) for n in names]
    try:
        unled = create_led(admin, specs, timeout_s)
        assert not unled, f"{unled} not led {timeout_s} s after creation"
    finally:
        admin.close()


def read_topic(bootstrap: str, topic: str, want: int, timeout_s: float = 30.0) -> list:
    """Read records from the beginning until `want` arrived or the timeout passed."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=1000,
    )
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list:
    """Every record now on the topic: reads up to the end offsets taken at the start (no
    waiting for records that might still come)."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    records: list = []
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
                consumer.position(tp) < end for tp, end in ends.items()):
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
