"""Publishes many records with one await: one aiokafka batch per (topic, partition).

Faust's per-message send path costs far more per record than appending to a batch, and would
make publishing, not the stage logic, the worker's bottleneck (bench/README.md). Keys are
partitioned with aiokafka's DefaultPartitioner (murmur2, as Java and kafka-python), so a lead's
records land where any other producer would put them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from murmurhash2 import murmurhash2

log = logging.getLogger(__name__)
#: Keys whose partition hash is kept between flushes: a lead's key is hashed for its input
#: check, its changes and its current stage, and a dict hit costs a tenth of even the C hash.
HASH_CACHE_SIZE = 50_000


class KafkaWriteError(RuntimeError):
    """Kafka did not acknowledge records the caller needs durable; says which and why."""


#: Kafka's murmur2 is MurmurHash2 (32-bit) with this seed (Java's Utils.murmur2).
_MURMUR_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2: the same 32-bit result as Java's Utils.murmur2 and aiokafka's. In C
    (the `murmurhash2` package): every lead an input batch touches has its key hashed for the
    input check, and at a million leads the pure-Python hash took about 2 µs of the worker's
    time per event (bench/README.md)."""
    hashed: int = murmurhash2(data, _MURMUR_SEED)
    return hashed


#: headers of a record that has none, shared: the C builder takes a list and only iterates it
_NO_HEADERS: list[tuple[str, bytes]] = []

#: Called for records of a tolerated topic that Kafka refused: (topic, partition, count, error).
Dropped = Callable[[str, int, int, BaseException], None]


class BatchSender:
    @classmethod
    def of_faust_app(cls, app: Any) -> BatchSender:
        """A sender on the aiokafka producer a started Faust app runs (Faust's own)."""
        return cls(lambda: app.producer._producer)

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._get_producer = producer  # returns the started aiokafka.AIOKafkaProducer
        self._producer: Any = None
        self._partitioner = DefaultPartitioner()
        #: the open batch of each (topic, partition)
        self._batches: dict[tuple[str, int], Any] = {}
        #: closed batches: ((topic, partition), batch, records)
        self._full: list[tuple[tuple[str, int], Any, int]] = []
        self._counts: dict[tuple[str, int], int] = {}
        self._partitions: dict[str, list[int]] = {}
        #: key -> murmur2 hash: a lead's input check, changes and current stage share a key
        self._hashes: dict[bytes | None, int] = {}

    async def prepare(self, topics: list[str]) -> None:
        """Learn the partition counts of the topics (once)."""
        if self._producer is None:
            self._producer = self._get_producer()
        client = self._producer.client
        for topic in topics:
            if topic not in self._partitions:
                await client._wait_on_metadata(topic)
                self._partitions[topic] = sorted(client.cluster.partitions_for_topic(topic))

    def partition_for(self, topic: str, key: bytes) -> int:
        """The partition Java's (and kafka-python's, aiokafka's) default partitioner gives
        `key` in `topic` (learnt by `prepare`)."""
        partitions = self._partitions[topic]
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]  # DefaultPartitioner's rule

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        if partition is None:
            if key is None:
                partitions = self._partitions[topic]
                partition = self._partitioner(key, partitions, partitions)
            else:
                partition = self.partition_for(topic, key)
        tp = (topic, partition)
        batch = self._batches.get(tp)
        builder = self._new_builder(tp) if batch is None else batch._builder
        count = self._counts[tp]
        # straight to the batch's C builder, our count as its offset delta: aiokafka's
        # BatchBuilder.append wraps it in Python that serializes with no serializer set and
        # checks a closed flag that nothing sets before `flush`, and took more time than the
        # builder itself (bench/README.md)
        if builder.append(count, None, key=key, value=value,
                          headers=headers or _NO_HEADERS) is None:
            self._full.append((tp, self._batches.pop(tp), count))
            builder = self._new_builder(tp)
            count = 0
            # aiokafka's builder takes any record into an empty batch, as Kafka's producers
            # do (the broker's size limit decides); this guards a builder that would not
            if builder.append(0, None, key=key, value=value,
                              headers=headers or _NO_HEADERS) is None:
                raise ValueError(f"a record for {topic} is larger than a whole batch")
        self._counts[tp] = count + 1

    def _new_builder(self, tp: tuple[str, int]) -> Any:
        batch = self._producer.create_batch()
        if batch._key_serializer is not None or batch._value_serializer is not None:
            raise RuntimeError("BatchSender appends bytes as they are: its producer must have "
                               "no key or value serializer")
        self._batches[tp] = batch
        self._counts[tp] = 0
        return batch._builder

    async def flush(self, tolerate: Collection[str] = (), dropped: Dropped | None = None
                    ) -> dict[tuple[str, int], int]:
        """Send everything added; wait for every acknowledgement; return the last offset
        written per (topic, partition). A batch of a `tolerate`d topic that Kafka refuses is
        reported to `dropped` (and logged CRITICAL); any other refusal raises KafkaWriteError
        once every batch has an answer."""
        batches = self._full + [(tp, b, self._counts[tp]) for tp, b in self._batches.items()]
        self._full, self._batches, self._counts = [], {}, {}
        if len(self._hashes) > HASH_CACHE_SIZE:
            self._hashes = {}
        if not batches:
            return {}
        futures = []
        for (topic, partition), batch, count in batches:
            # what BatchBuilder.append would have counted: the producer reads it for the
            # batch's record count (idempotent sequence numbers, empty batches)
            batch._relative_offset = count
            futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        results = await asyncio.gather(*futures, return_exceptions=True)
        last: dict[tuple[str, int], int] = {}
        failures: list[str] = []
        for ((topic, partition), _, count), meta in zip(batches, results, strict=True):
            if isinstance(meta, BaseException):
                if topic in tolerate:
                    log.critical("Kafka refused %d record(s) for %s[%d], which are skipped: "
                                 "%s: %s", count, topic, partition, type(meta).__name__, meta)
                    if dropped is not None:
                        dropped(topic, partition, count, meta)
                    continue
                failures.append(f"{count} record(s) to {topic}[{partition}]: "
                                f"{type(meta).__name__}: {meta}")
                continue
            end = meta.offset + count - 1
            if end > last.get((topic, partition), -1):
                last[(topic, partition)] = end
        if failures:
            raise KafkaWriteError("Kafka did not acknowledge " + "; ".join(failures))
        return last
