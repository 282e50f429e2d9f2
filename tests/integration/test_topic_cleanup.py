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


def test_the_files_of_deleted_topics_are_gone_once_the_broker_has_stopped(own_broker):
    """A run deletes its topics just before it stops the broker it started: their files must
    not wait on disk for the broker's next start."""
    from streams.tools import broker

    address, cfg = own_broker(19792)
    said: list[str] = []
    with topics_removed_after(address, said.append, cfg.data_dir):
        _create(address, "cleanup-files")
        deadline = time.monotonic() + 30  # the broker creates the folders as it applies it
        while not any(cfg.data_dir.glob("cleanup-files-*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(cfg.data_dir.glob("cleanup-files-*"))
    assert broker.stop(cfg)
    assert not any(cfg.data_dir.glob("cleanup-files-*"))
    assert said == []
