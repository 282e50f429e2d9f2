"""The Kafka every benchmark script runs against: $KAFKA_BOOTSTRAP_SERVERS, or the local broker,
started for the run and stopped after it (only if the script started it). On the local broker the
topics a run created are deleted when it ends (`broker.topics_removed_after`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.adapters.topics import create_led
from streams.tools import broker


@contextlib.contextmanager
def bench_kafka(echo: Callable[[str], None] = print) -> Iterator[str]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap
        return
    cfg = broker.BrokerConfig.from_env()
    bootstrap, started = broker.start(cfg, echo=echo)
    try:
        with broker.topics_removed_after(bootstrap, echo, cfg.data_dir):
            yield bootstrap
    finally:
        if started:
            broker.stop(cfg)


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics and wait until the broker's metadata shows them led, as the worker
    does. A producer's first requests can still be answered NOT_LEADER_OR_FOLLOWER for a
    moment after that (the broker applies the leadership to its partitions after its
    metadata), and aiokafka retries them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    specs = [NewTopic(name, partitions, 1) for name in names]
    try:
        create_led(admin, specs)
    finally:
        admin.close()
