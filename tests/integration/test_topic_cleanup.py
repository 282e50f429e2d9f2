"""Benchmarks and test sessions delete the topics they created on the local broker, which keeps
its data from one start to the next."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.tools.broker import topics_removed_after


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _create(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        admin.close()


def test_topics_created_in_the_block_are_deleted_and_older_ones_kept(kafka_bootstrap,
                                                                    unique_name):
    older, made = unique_name("cleanup-older"), unique_name("cleanup-made")
    _create(kafka_bootstrap, older)
    said: list[str] = []
    with topics_removed_after(kafka_bootstrap, said.append):
        _create(kafka_bootstrap, made)
        assert made in _topics(kafka_bootstrap)
    deadline = time.monotonic() + 30
    while made in _topics(kafka_bootstrap) and time.monotonic() < deadline:
        time.sleep(0.5)
    now = _topics(kafka_bootstrap)
    assert made not in now
    assert older in now
    assert said == []
