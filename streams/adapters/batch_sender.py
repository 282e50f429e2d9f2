"""Publishes many records with one await: one record batch per (topic, partition), and one
produce request per broker for all of them. `flush` waits for the answers; `send` returns once
the requests are written, so the caller can work while the broker answers.

Faust's per-message send path costs far more per record than appending to a batch, and would
make publishing, not the stage logic, the worker's bottleneck (bench/README.md). Keys are
partitioned with aiokafka's DefaultPartitioner (murmur2, as Java and kafka-python), so a lead's
records land where any other producer would put them.

The batches are built by aiokafka's C record builder and sent on the connections of Faust's
aiokafka producer, but not through its accumulator and sender task, whose Python per partition
batch (a MessageBatch, futures, `shield`, the sender's wake-ups) is paid for every partition a
commit writes, at every commit: at a steady rate a worker commits small batches back to back,
and that cost set how long each took, and so the latency (bench/README.md, "One produce request
per broker"). What the producer's own path gives is kept: acks and request timeout as the
producer is set, the retriable errors retried after its backoff with fresh metadata, a
partition's batches sent in order, one request at a time. Its producer is not idempotent
(Faust's is not, outside transactions), so, as with aiokafka's own retries, a retried batch may
be written twice; the commit protocol's records read the same twice (a state, a change with its
id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from time import monotonic
from typing import Any

from aiokafka import errors as Errors
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from streams.adapters.murmur2 import murmur2
from streams.adapters.produce_wire import Produce

log = logging.getLogger(__name__)


class KafkaWriteError(RuntimeError):
    """Kafka did not acknowledge records the caller needs durable; says which and why."""


#: headers of a record that has none, shared: the C builder takes a list and only iterates it
_NO_HEADERS: list[tuple[str, bytes]] = []

#: Called for records of a tolerated topic that Kafka refused: (topic, partition, count, error).
Dropped = Callable[[str, int, int, BaseException], None]

#: the requests of a round: (node -> topic -> [(partition, data)], a task per node's request,
#: the batches that found no leader with that error)
_Issued = tuple[dict[int, dict[str, list[tuple[int, bytes]]]], list["asyncio.Future[Any]"],
                dict[tuple[str, int], Errors.KafkaError]]


class BatchSender:
    @classmethod
    def of_faust_app(cls, app: Any) -> BatchSender:
        """A sender on the aiokafka producer a started Faust app runs (Faust's own)."""
        return cls(lambda: app.producer._producer)

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._get_producer = producer  # returns the started aiokafka.AIOKafkaProducer
        self._producer: Any = None
        self._partitioner = DefaultPartitioner()
        #: the open batch of each (topic, partition): aiokafka's C record batch builder
        self._batches: dict[tuple[str, int], Any] = {}
        #: closed batches: ((topic, partition), builder, records)
        self._full: list[tuple[tuple[str, int], Any, int]] = []
        self._counts: dict[tuple[str, int], int] = {}
        self._partitions: dict[str, list[int]] = {}

    async def prepare(self, topics: list[str]) -> None:
        """Learn the partition counts of the topics (once)."""
        if self._producer is None:
            self._producer = self._get_producer()
            if self._producer._txn_manager is not None:
                raise RuntimeError("BatchSender writes its own produce requests, without an "
                                   "idempotent producer's sequence numbers: its producer must "
                                   "be neither idempotent nor transactional")
            if self._producer._sender._acks == 0:
                raise RuntimeError("BatchSender returns what Kafka acknowledged: its producer "
                                   "must ask for acknowledgements (acks 1 or all, not 0)")
        client = self._producer.client
        for topic in topics:
            if topic not in self._partitions:
                await client._wait_on_metadata(topic)
                self._partitions[topic] = sorted(client.cluster.partitions_for_topic(topic))

    def partition_for(self, topic: str, key: bytes) -> int:
        """The partition Java's (and kafka-python's, aiokafka's) default partitioner gives
        `key` in `topic` (learnt by `prepare`)."""
        partitions = self._partitions[topic]
        # DefaultPartitioner's rule
        return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        if partition is None:
            if key is None:
                partitions = self._partitions[topic]
                partition = self._partitioner(key, partitions, partitions)
            else:
                partition = self.partition_for(topic, key)
        tp = (topic, partition)
        builder = self._batches.get(tp)
        if builder is None:
            builder = self._new_builder(tp)
        count = self._counts[tp]
        # straight to the batch's C builder, our count as its offset delta: aiokafka's
        # BatchBuilder.append wraps it in Python that serializes with no serializer set and
        # checks a closed flag that nothing sets before `flush`, and took more time than the
        # builder itself (bench/README.md)
        # positional: the builder matches keywords by name, about 20 ns a record (timeit)
        if builder.append(count, None, key, value, headers or _NO_HEADERS) is None:
            self._full.append((tp, self._batches.pop(tp), count))
            builder = self._new_builder(tp)
            count = 0
            # aiokafka's builder takes any record into an empty batch, as Kafka's producers
            # do (the broker's size limit decides); this guards a builder that would not
            if builder.append(0, None, key, value, headers or _NO_HEADERS) is None:
                raise ValueError(f"a record for {topic} is larger than a whole batch")
        self._counts[tp] = count + 1

    def _new_builder(self, tp: tuple[str, int]) -> Any:
        batch = self._producer.create_batch()
        if batch._key_serializer is not None or batch._value_serializer is not None:
            raise RuntimeError("BatchSender appends bytes as they are: its producer must have "
                               "no key or value serializer")
        self._batches[tp] = batch._builder
        self._counts[tp] = 0
        return batch._builder

    async def flush(self, tolerate: Collection[str] = (), dropped: Dropped | None = None
                    ) -> dict[tuple[str, int], int]:
        """Send everything added; wait for every acknowledgement; return the last offset
        written per (topic, partition). A batch of a `tolerate`d topic that Kafka refuses is
        reported to `dropped` (and logged CRITICAL); any other refusal raises KafkaWriteError
        once every batch has an answer."""
        started = await self._start()
        if started is None:
            return {}
        return await self._complete(*started, tolerate, dropped)

    async def send(self, tolerate: Collection[str] = (), dropped: Dropped | None = None
                   ) -> asyncio.Future[dict[tuple[str, int], int]]:
        """Send everything added, and return once its produce requests are written (or waiting
        for a connection), without waiting for their answers: the future holds what `flush`
        would return, or raises what it would raise. Records added after this call go with a
        later send."""
        started = await self._start()
        if started is None:
            done: asyncio.Future[dict[tuple[str, int], int]] = \
                asyncio.get_running_loop().create_future()
            done.set_result({})
            return done
        # one turn of the loop: the requests' tasks run to their writes, which aiokafka's
        # connection makes at once, so the broker works on them while the caller goes on
        await asyncio.sleep(0)
        return asyncio.ensure_future(self._complete(*started, tolerate, dropped))

    async def _start(self) -> tuple[list[dict[tuple[str, int], tuple[Any, int]]],
                                    dict[tuple[str, int], tuple[bytes, int]], _Issued] | None:
        """Everything added, taken (before any await, so later adds go with the next send) and
        grouped into rounds, the first round built and its requests issued."""
        batches = self._full + [(tp, b, self._counts[tp]) for tp, b in self._batches.items()]
        self._full, self._batches, self._counts = [], {}, {}
        if not batches:
            return None
        # the producer's client refreshes the metadata only of the topics it was asked for
        await self.prepare(list({topic for (topic, _), _, _ in batches}))
        # Kafka takes one record batch per partition in a produce request: a partition with
        # more (a commit larger than the batch size) sends them in order, one request round each
        rounds: list[dict[tuple[str, int], tuple[Any, int]]] = [{}]
        for tp, builder, count in batches:
            for pending in rounds:
                if tp not in pending:
                    break
            else:
                pending = {}
                rounds.append(pending)
            pending[tp] = (builder, count)
        sending = _built(rounds[0])
        return rounds, sending, self._issue(sending)

    async def _complete(self, rounds: list[dict[tuple[str, int], tuple[Any, int]]],
                        sending: dict[tuple[str, int], tuple[bytes, int]], issued: _Issued,
                        tolerate: Collection[str], dropped: Dropped | None
                        ) -> dict[tuple[str, int], int]:
        """The rounds' answers (the first round's requests issued), the later rounds sent in
        turn; as `flush` returns or raises."""
        last: dict[tuple[str, int], int] = {}
        failures: list[str] = []
        refused: set[tuple[str, int]] = set()
        for number in range(len(rounds)):
            if number + 1 < len(rounds):
                # the next round's batches are built (their CRCs computed) while this round's
                # requests are answered: one turn of the loop writes them first
                await asyncio.sleep(0)
                built_next = _built(rounds[number + 1])
            answers = await self._produce(sending, issued)
            for (topic, partition), answer in answers.items():
                count = sending[(topic, partition)][1]
                if isinstance(answer, BaseException):
                    refused.add((topic, partition))
                    if topic in tolerate:
                        log.critical("Kafka refused %d record(s) for %s[%d], which are "
                                     "skipped: %s: %s", count, topic, partition,
                                     type(answer).__name__, answer)
                        if dropped is not None:
                            dropped(topic, partition, count, answer)
                        continue
                    failures.append(f"{count} record(s) to {topic}[{partition}]: "
                                    f"{type(answer).__name__}: {answer}")
                    continue
                last[(topic, partition)] = answer + count - 1
            if number + 1 < len(rounds):
                # never a partition's later batch without its earlier one
                sending = {tp: b for tp, b in built_next.items() if tp not in refused}
                issued = self._issue(sending)
        if failures:
            raise KafkaWriteError("Kafka did not acknowledge " + "; ".join(failures))
        return last

    def _issue(self, pending: dict[tuple[str, int], tuple[bytes, int]]) -> _Issued:
        """One produce request per leader for the batches, each in a task of its own (aiokafka's
        `client.send`, which writes it in the task's first step); the batches of partitions
        without a leader, with the error that says so."""
        producer = self._producer
        client = producer.client
        by_node: dict[int, dict[str, list[tuple[int, bytes]]]] = {}
        unacknowledged: dict[tuple[str, int], Errors.KafkaError] = {}
        for tp, (data, _) in pending.items():
            node = client.cluster.leader_for_partition(TopicPartition(*tp))
            if node is None or node < 0:
                unacknowledged[tp] = Errors.LeaderNotAvailableError()
                continue
            by_node.setdefault(node, {}).setdefault(tp[0], []).append((tp[1], data))
        requests = [asyncio.ensure_future(client.send(
            node, Produce(producer._sender._acks, producer._request_timeout_ms,
                          list(topics.items()))))
            for node, topics in by_node.items()]
        return by_node, requests, unacknowledged

    async def _produce(self, pending: dict[tuple[str, int], tuple[bytes, int]],
                       issued: _Issued) -> dict[tuple[str, int], int | BaseException]:
        """The answers to `issued` (the batches of `pending`); retried as aiokafka's sender
        retries (retriable errors, after its backoff, with fresh metadata where the error says
        it is stale) until the producer's request timeout. Returns each partition's base
        offset, or the error that refused its batch."""
        producer = self._producer
        client = producer.client
        deadline = monotonic() + producer._request_timeout_ms / 1000
        answers: dict[tuple[str, int], int | BaseException] = {}
        while True:
            by_node, requests, unacknowledged = issued
            replies = await asyncio.gather(*requests, return_exceptions=True)
            for topics, reply in zip(by_node.values(), replies, strict=True):
                if isinstance(reply, BaseException):
                    if not isinstance(reply, Errors.KafkaError):
                        raise reply
                    for topic, partitions in topics.items():
                        for partition, _ in partitions:
                            unacknowledged[(topic, partition)] = reply
                    continue
                unanswered = {(topic, partition) for topic, partitions in topics.items()
                              for partition, _ in partitions}
                for topic, partitions in reply.topics:
                    for info in partitions:
                        tp = (topic, info[0])
                        if tp not in unanswered:
                            continue  # not asked for, or named twice
                        unanswered.discard(tp)
                        if not info[1]:
                            answers[tp] = info[2]  # the batch's base offset
                        else:
                            unacknowledged[tp] = Errors.for_code(info[1])()
                for tp in unanswered:
                    unacknowledged[tp] = Errors.KafkaError("the produce response did not name it")
            pending = {tp: pending[tp] for tp, error in unacknowledged.items() if error.retriable}
            for tp, error in unacknowledged.items():
                if tp not in pending:
                    answers[tp] = error
            if not pending:
                return answers
            if monotonic() >= deadline:
                for tp in pending:
                    answers[tp] = unacknowledged[tp]
                return answers
            why = sorted({str(e) or type(e).__name__ for e in unacknowledged.values()})
            log.warning("retrying %d batch(es) Kafka has not acknowledged: %s", len(pending),
                        "; ".join(why))
            if any(getattr(unacknowledged[tp], "invalid_metadata", False) for tp in pending):
                client.force_metadata_update()
            await asyncio.sleep(producer._sender._retry_backoff)
            await client._maybe_wait_metadata()
            issued = self._issue(pending)


def _built(pending: dict[tuple[str, int], tuple[Any, int]]
           ) -> dict[tuple[str, int], tuple[bytes, int]]:
    return {tp: (builder.build(), count) for tp, (builder, count) in pending.items()}
