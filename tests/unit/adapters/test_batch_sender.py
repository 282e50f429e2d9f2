"""The sender appends to aiokafka's C record builder itself (batch_sender.py says why): the
batches it hands the producer must be the batches aiokafka's own `BatchBuilder.append` makes of
the same records, record for record, with the record count the producer reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.batch_sender import BatchSender

#: small enough that a few records fill a batch and the sender opens another
BATCH_BYTES = 300


@dataclass
class Meta:
    offset: int


@dataclass
class Producer:
    """aiokafka's producer as the sender uses it: real batches, sends recorded, offsets given
    as the broker would (each batch after the partition's last)."""

    key_serializer: Any = None
    sent: list[tuple[str, int, BatchBuilder]] = field(default_factory=list)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0, key_serializer=self.key_serializer)

    async def send_batch(self, batch: BatchBuilder, topic: str, *,
                         partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch))
        base = self.ends.get((topic, partition), 0)
        self.ends[(topic, partition)] = base + batch.record_count()
        future = asyncio.get_running_loop().create_future()
        future.set_result(Meta(base))
        return future


def records_of(batch: BatchBuilder) -> list[tuple[int, bytes | None, bytes | None, list]]:
    read = MemoryRecords(bytes(batch._build())).next_batch()
    return [(r.offset, r.key, r.value, list(r.headers)) for r in read]


def sender_on(producer: Producer) -> BatchSender:
    sender = BatchSender(lambda: producer)
    sender._producer = producer
    sender._partitions = {"t": [0, 1, 2]}
    return sender


Record = tuple[bytes, bytes | None, list[tuple[str, bytes]] | None]
records = st.lists(st.tuples(st.binary(min_size=1, max_size=12),
                             st.one_of(st.none(), st.binary(max_size=120)),
                             st.one_of(st.none(), st.lists(
                                 st.tuples(st.text(max_size=5), st.binary(max_size=8)),
                                 max_size=2))),
                   min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(records)
def test_batches_hold_what_aiokafkas_append_puts_in_them(recs: list[Record]):
    producer = Producer()
    sender = sender_on(producer)
    for key, value, headers in recs:
        sender.add("t", key, value, headers)
    last = asyncio.run(sender.flush())

    # the same records through aiokafka's own BatchBuilder.append, a new batch when it is full
    expected: dict[int, list[list[tuple]]] = {}
    open_: dict[int, BatchBuilder] = {}
    for key, value, headers in recs:
        partition = sender.partition_for("t", key)
        batch = open_.get(partition)
        if batch is None or batch.append(key=key, value=value, timestamp=None,
                                         headers=headers or []) is None:
            if batch is not None:
                expected.setdefault(partition, []).append(records_of(batch))
            batch = open_[partition] = BatchBuilder(BATCH_BYTES, 0)
            assert batch.append(key=key, value=value, timestamp=None,
                                headers=headers or []) is not None
    for partition, batch in open_.items():
        expected.setdefault(partition, []).append(records_of(batch))

    got: dict[int, list[list[tuple]]] = {}
    for topic, partition, batch in producer.sent:
        assert topic == "t"
        built = records_of(batch)
        assert batch.record_count() == len(built) > 0  # what the producer reads of it
        got.setdefault(partition, []).append(built)
    assert got == expected
    assert last == {("t", p): producer.ends[("t", p)] - 1 for p in got}


def test_a_producer_that_serializes_keys_is_refused_before_anything_is_appended():
    sender = sender_on(Producer(key_serializer=lambda key: b"x" + key))
    with pytest.raises(RuntimeError, match="no key or value serializer"):
        sender.add("t", b"lead-1", b"v")


def test_a_record_larger_than_a_batch_goes_in_a_batch_of_its_own():
    # as with Kafka's producers: the batch size bounds what is added to a batch, and the
    # broker's message size limit what it takes
    producer = Producer()
    sender = sender_on(producer)
    big = b"v" * (BATCH_BYTES * 2)
    for value in (b"a", big, b"b"):
        sender.add("t", b"lead-1", value)
    asyncio.run(sender.flush())
    assert [[value for _, _, value, _ in records_of(batch)] for _, _, batch in producer.sent] \
        == [[b"a"], [big], [b"b"]]
