"""The sender appends to aiokafka's C record builder and writes its own produce requests
(batch_sender.py says why). The batches it sends must be the batches aiokafka's own
`BatchBuilder.append` makes of the same records, record for record; its requests must be what a
broker takes (one batch per partition each, a partition's batches in order); and the broker's
answers must be handled as aiokafka's sender handles them: retriable errors retried, others
reported, nothing acknowledged that Kafka did not acknowledge.

The broker here answers with Kafka's error codes, and every request and response goes through
aiokafka's encoding and decoding (produce v7) as on the wire."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import errors as kafka_errors
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.produce import ProduceRequest, ProduceRequest_v7, ProduceResponse_v7
from aiokafka.record.memory_records import MemoryRecords
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.batch_sender import BatchSender, KafkaWriteError

#: small enough that a few records fill a batch and the sender opens another
BATCH_BYTES = 300
NOT_LEADER_OR_FOLLOWER = 6
RECORD_LIST_TOO_LARGE = 18
TOPIC_AUTHORIZATION_FAILED = 29

Records = list[tuple[int, bytes | None, bytes | None, list[Any]]]


def records_in(data: bytes) -> list[Records]:
    """The record batches of a partition's data in a produce request."""
    memory = MemoryRecords(bytes(data))
    batches = []
    while (batch := memory.next_batch()) is not None:
        batches.append([(r.offset, r.key, r.value, list(r.headers)) for r in batch])
    return batches


@dataclass
class Cluster:
    leaders: dict[tuple[str, int], int | None]

    def leader_for_partition(self, tp: Any) -> int | None:
        return self.leaders.get((tp.topic, tp.partition))

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {p for t, p in self.leaders if t == topic}


@dataclass
class Broker:
    """aiokafka's client as the sender uses it, in front of a broker: `errors` are the codes to
    answer, in turn, for a (topic, partition); `down` the number of requests to fail with a
    connection error; after `force_metadata_update`, `moved` leaders take effect."""

    cluster: Cluster
    errors: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    down: int = 0
    moved: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (node, {(topic, partition): its record batches}) per request, in order
    requests: list[tuple[int, dict[tuple[str, int], list[Records]]]] = field(
        default_factory=list)
    #: the records written per (topic, partition), as the log holds them
    log: dict[tuple[str, int], list[Records]] = field(default_factory=dict)
    metadata_updates: int = 0
    #: topics whose metadata the client was asked to keep (aiokafka refreshes only those)
    tracked: list[str] = field(default_factory=list)
    #: if set, requests are answered only once it is (those before are taken, as written)
    answering: asyncio.Event | None = None

    async def _wait_on_metadata(self, topic: str) -> None:
        self.tracked.append(topic)

    async def send(self, node: int, request: ProduceRequest) -> Any:
        # as aiokafka's connection does: the request built for the broker's versions (produce
        # v3 to v12, as Kafka 4 answers), encoded; the answer decoded by its RESPONSE_TYPE
        built = request.prepare({ProduceRequest.API_KEY: (3, 12)})
        wire = ProduceRequest_v7.decode(io.BytesIO(built.encode()))
        assert wire.required_acks == -1
        sent: dict[tuple[str, int], list[Records]] = {}
        for topic, partitions in wire.topics:
            for partition, data in partitions:
                assert (topic, partition) not in sent, "one entry per partition"
                sent[(topic, partition)] = records_in(data)
                # produce v3 and later take exactly one record batch per partition
                assert len(sent[(topic, partition)]) == 1
        assert all(topic in self.tracked for topic, _ in sent), "metadata kept for each topic"
        self.requests.append((node, sent))
        await asyncio.sleep(0)
        if self.answering is not None:
            await self.answering.wait()
        if self.down:
            self.down -= 1
            raise kafka_errors.KafkaConnectionError("connection reset")
        answers = []
        for topic, partitions in wire.topics:
            answered = []
            for partition, _ in partitions:
                tp = (topic, partition)
                queued = self.errors.get(tp, [])
                code = queued.pop(0) if queued else 0
                if code == 0 and self.cluster.leaders.get(tp) != node:
                    code = NOT_LEADER_OR_FOLLOWER
                base = sum(len(b) for b in self.log.get(tp, []))
                if code == 0:
                    self.log.setdefault(tp, []).extend(sent[tp])
                answered.append((partition, code, base if code == 0 else -1, -1, 0))
            answers.append((topic, answered))
        response = ProduceResponse_v7(topics=answers, throttle_time_ms=0)
        return built.RESPONSE_TYPE.decode(io.BytesIO(response.encode()))

    def force_metadata_update(self) -> None:
        self.metadata_updates += 1
        self.cluster.leaders.update(self.moved)

    async def _maybe_wait_metadata(self) -> None:
        return None


@dataclass
class Sender:
    _acks: int = -1
    _retry_backoff: float = 0.001


@dataclass
class Producer:
    """aiokafka's producer as the sender uses it: its settings, its client, its batches."""

    client: Broker
    key_serializer: Any = None
    _request_timeout_ms: int = 2000
    _sender: Sender = field(default_factory=Sender)
    _txn_manager: Any = None

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0, key_serializer=self.key_serializer)


def sender_on(producer: Producer, partitions: int = 3) -> BatchSender:
    sender = BatchSender(lambda: producer)
    sender._producer = producer
    asyncio.run(sender.prepare(["t", "dlq"]))
    return sender


def broker_leading(partitions: int = 3, node: int = 1) -> Broker:
    return Broker(Cluster({(topic, p): node for topic in ("t", "dlq")
                           for p in range(partitions)}))


def records_of(batch: BatchBuilder) -> Records:
    return records_in(batch._build())[0]


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
    broker = broker_leading()
    sender = sender_on(Producer(broker))
    for key, value, headers in recs:
        sender.add("t", key, value, headers)
    last = asyncio.run(sender.flush())

    # the same records through aiokafka's own BatchBuilder.append, a new batch when it is full
    expected: dict[int, list[Records]] = {}
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

    # sent in that order, a partition's n-th batch in the n-th request
    got: dict[int, list[Records]] = {}
    for number, (_, sent) in enumerate(broker.requests):
        for (topic, partition), batches in sent.items():
            assert topic == "t"
            assert len(got.get(partition, [])) == number
            got.setdefault(partition, []).extend(batches)
    assert got == expected
    assert len(broker.requests) == max(len(b) for b in expected.values())
    assert last == {("t", p): sum(len(b) for b in broker.log[("t", p)]) - 1 for p in got}


def test_one_request_per_leader_carries_every_partition_it_leads():
    broker = broker_leading(partitions=4)
    broker.cluster.leaders.update({("t", 1): 2, ("t", 3): 2})
    sender = sender_on(Producer(broker), partitions=4)
    keys = [f"lead-{n}".encode() for n in range(40)]
    for key in keys:
        sender.add("t", key, b"v")
    last = asyncio.run(sender.flush())
    by_node = {node: set(sent) for node, sent in broker.requests}
    assert len(broker.requests) == 2
    assert by_node == {1: {("t", 0), ("t", 2)}, 2: {("t", 1), ("t", 3)}}
    assert sum(end + 1 for end in last.values()) == len(keys)


def test_a_moved_leader_is_retried_with_fresh_metadata_and_written_once():
    broker = broker_leading()
    broker.moved = {("t", 0): 2}
    broker.cluster.leaders[("t", 0)] = 1
    broker.errors[("t", 0)] = [NOT_LEADER_OR_FOLLOWER]  # the leader moved to node 2
    sender = sender_on(Producer(broker))
    sender.add("t", b"k", b"a", partition=0)
    sender.add("t", b"k", b"b", partition=1)
    last = asyncio.run(sender.flush())
    assert broker.metadata_updates == 1
    assert [(node, sorted(sent)) for node, sent in broker.requests] == [
        (1, [("t", 0), ("t", 1)]), (2, [("t", 0)])]
    assert [[v for _, _, v, _ in b] for b in broker.log[("t", 0)]] == [[b"a"]]
    assert last == {("t", 0): 0, ("t", 1): 0}


def test_a_topic_written_by_partition_alone_has_its_metadata_kept_before_it_is_sent():
    # the changelog's records are added with their partition: no partitioning asked for it
    broker = broker_leading()
    broker.cluster.leaders[("changelog", 0)] = 1
    sender = sender_on(Producer(broker))
    sender.add("changelog", b"k", b"state", partition=0)
    assert asyncio.run(sender.flush()) == {("changelog", 0): 0}
    assert broker.tracked[-1] == "changelog"


def test_a_lost_connection_is_retried():
    broker = broker_leading()
    broker.down = 2
    sender = sender_on(Producer(broker))
    sender.add("t", b"k", b"a", partition=2)
    assert asyncio.run(sender.flush()) == {("t", 2): 0}
    assert len(broker.requests) == 3


def test_retries_end_at_the_producers_request_timeout_with_the_last_error():
    broker = broker_leading()
    broker.down = 10**9
    sender = sender_on(Producer(broker, _request_timeout_ms=300,
                                _sender=Sender(_retry_backoff=0.02)))
    sender.add("t", b"k", b"a", partition=0)
    started = time.monotonic()
    with pytest.raises(KafkaWriteError, match=r"1 record\(s\) to t\[0\]: KafkaConnectionError"):
        asyncio.run(sender.flush())
    assert time.monotonic() - started >= 0.3
    assert 2 <= len(broker.requests) <= 16  # retried, each after the backoff
    assert broker.log == {}


def test_a_partition_without_a_leader_waits_for_one():
    broker = broker_leading()
    broker.cluster.leaders[("t", 1)] = -1
    broker.moved = {("t", 1): 3}
    sender = sender_on(Producer(broker))
    sender.add("t", b"k", b"a", partition=1)
    assert asyncio.run(sender.flush()) == {("t", 1): 0}
    assert [node for node, _ in broker.requests] == [3]


def test_a_refusal_is_reported_after_every_batch_has_its_answer_and_stops_that_partition():
    broker = broker_leading()
    broker.errors[("t", 0)] = [RECORD_LIST_TOO_LARGE]
    sender = sender_on(Producer(broker))
    big = b"v" * (BATCH_BYTES - 100)
    sender.add("t", b"k", big, partition=0)
    sender.add("t", b"k", big, partition=0)  # a second batch of partition 0: never sent
    sender.add("t", b"k", b"b", partition=1)
    with pytest.raises(KafkaWriteError, match=r"t\[0\]: MessageSizeTooLargeError|"
                                               r"t\[0\]: RecordListTooLargeError"):
        asyncio.run(sender.flush())
    assert [sorted(sent) for _, sent in broker.requests] == [[("t", 0), ("t", 1)]]
    assert list(broker.log) == [("t", 1)]


def test_a_tolerated_topics_refusal_is_reported_to_dropped_and_the_rest_acknowledged():
    broker = broker_leading()
    broker.errors[("dlq", 2)] = [TOPIC_AUTHORIZATION_FAILED]
    sender = sender_on(Producer(broker))
    sender.add("dlq", b"k", b"dead", partition=2)
    sender.add("dlq", b"k", b"dead", partition=2)
    sender.add("t", b"k", b"a", partition=2)
    dropped: list[tuple[str, int, int, str]] = []
    last = asyncio.run(sender.flush(
        ("dlq",), lambda topic, p, count, exc: dropped.append(
            (topic, p, count, type(exc).__name__))))
    assert dropped == [("dlq", 2, 2, "TopicAuthorizationFailedError")]
    assert last == {("t", 2): 0}


def test_a_producer_that_serializes_keys_is_refused_before_anything_is_appended():
    sender = sender_on(Producer(broker_leading(), key_serializer=lambda key: b"x" + key))
    with pytest.raises(RuntimeError, match="no key or value serializer"):
        sender.add("t", b"lead-1", b"v")


def test_an_idempotent_producer_is_refused():
    # its batches need the sequence numbers aiokafka's sender gives them
    producer = Producer(broker_leading(), _txn_manager=object())
    with pytest.raises(RuntimeError, match="neither idempotent nor transactional"):
        asyncio.run(BatchSender(lambda: producer).prepare(["t"]))


def test_a_producer_that_asks_for_no_acknowledgements_is_refused():
    # with acks=0 Kafka answers nothing, and the commit protocol needs to know what it wrote
    producer = Producer(broker_leading(), _sender=Sender(_acks=0))
    with pytest.raises(RuntimeError, match="acks 1 or all"):
        asyncio.run(BatchSender(lambda: producer).prepare(["t"]))


def test_a_record_larger_than_a_batch_goes_in_a_batch_of_its_own():
    # as with Kafka's producers: the batch size bounds what is added to a batch, and the
    # broker's message size limit what it takes
    broker = broker_leading()
    sender = sender_on(Producer(broker))
    big = b"v" * (BATCH_BYTES * 2)
    for value in (b"a", big, b"b"):
        sender.add("t", b"lead-1", value)
    last = asyncio.run(sender.flush())
    tp = ("t", sender.partition_for("t", b"lead-1"))
    assert [[value for _, _, value, _ in batch] for batch in broker.log[tp]] \
        == [[b"a"], [big], [b"b"]]
    assert last == {tp: 2}


def test_send_returns_with_its_requests_written_and_their_answers_still_to_come():
    """The commit protocol's step 2 goes on to the next batch once its requests are out: the
    broker must have them when `send` returns, and records added after it go separately."""
    broker = broker_leading()
    sender = sender_on(Producer(broker))

    async def scenario() -> None:
        broker.answering = asyncio.Event()
        sender.add("t", b"k", b"first", partition=0)
        acknowledged = await sender.send()
        assert [sorted(sent) for _, sent in broker.requests] == [[("t", 0)]]  # written
        assert not acknowledged.done()
        sender.add("t", b"k", b"second", partition=0)  # not part of that send
        broker.answering.set()
        assert await acknowledged == {("t", 0): 0}
        assert await sender.flush() == {("t", 0): 1}
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [[v for _, _, v, _ in b] for b in broker.log[("t", 0)]] == [[b"first"], [b"second"]]


def test_a_refusal_of_a_send_is_raised_by_its_future():
    broker = broker_leading()
    broker.errors[("t", 1)] = [TOPIC_AUTHORIZATION_FAILED]
    sender = sender_on(Producer(broker))

    async def scenario() -> None:
        sender.add("t", b"k", b"a", partition=1)
        acknowledged = await sender.send()
        with pytest.raises(KafkaWriteError, match="TopicAuthorizationFailed"):
            await acknowledged
        assert await (await sender.send()) == {}  # nothing left over
    asyncio.run(scenario())
