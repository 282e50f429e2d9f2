"""The input topic's records, unpacked from a fetch with less work per record than aiokafka's.

aiokafka turns every fetched record into a ConsumerRecord: a generic dataclass whose
interpreted `__init__` sets eleven fields, after two `len` calls and a copy of the headers,
behind an interpreted `__next__` per record. In the worker that runs on Faust's consumer
thread, and while it does, it holds the interpreter's lock the event loop needs; the loop's
idle time at full speed matched that thread's CPU (bench/README.md, "Where the event loop
waits"). For the input topic (`install`), this module's records carry only what the pipeline
reads (topic, partition, offset, timestamp, key, value, headers) and the partition's unpacking
is one compiled generator (streams/__init__.py, MODULES), iterated directly. Every other topic
(changelogs being replayed, Faust's own) keeps aiokafka's records, and so does a consumer that
reads only committed transactions (its aborted-transaction bookkeeping stays aiokafka's).

It relies on aiokafka's fetcher internals (its module's `PartitionRecords`, the `_tp`,
`_records`, `_check_crcs` and `next_fetch_offset` of one), as pinned in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import cython
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException

_AIOKAFKA_RECORDS = fetcher.PartitionRecords
#: the headers of every record that has none: one shared empty tuple, not a list per record
NO_HEADERS: tuple[tuple[str, bytes], ...] = ()


@cython.no_gc  # compiled: not tracked by the cycle collector (below)
@cython.cclass
class InputRecord:
    """One input record as the pipeline reads it (an aiokafka ConsumerRecord's fields of
    those names). Compiled, an extension type whose fields are C slots (input_records.pxd):
    unpacking took 0.42 µs per record with it and 0.62 with a compiled plain class.

    Compiled, it is not tracked by the cycle collector either, and a record without headers
    shares NO_HEADERS: so a fetch of 20,000 records adds no object the collector counts or
    walks. Tracked, each record and its headers list added two to the count that triggers a
    young collection, and Faust's consumer thread, which unpacks the next fetch while the event
    loop works, ran collections that walked them all while holding the interpreter's lock the
    loop waited for (bench/README.md, "The interpreter's lock given away")."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, topic: str, partition: int, offset: int, timestamp: int,
                 key: bytes | None, value: bytes | None,
                 headers: Sequence[tuple[str, bytes]]) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers

    def __repr__(self) -> str:
        return (f"InputRecord(topic={self.topic!r}, partition={self.partition}, "
                f"offset={self.offset}, key={self.key!r})")


class InputPartitionRecords(_AIOKAFKA_RECORDS):  # type: ignore[misc, valid-type]
    """One partition's records of one fetch, as aiokafka's fetcher holds them."""

    #: the topics whose records are InputRecords (set by `install`)
    input_topics: frozenset[str] = frozenset()
    #: the offset after the last record yielded: the consumer's position once it is read
    next_fetch_offset: int
    #: the offset after the fetch's last record batch (input topics only)
    end_offset: int
    _records_iterator: Iterator[Any] | None

    def __init__(self, tp: Any, records: Any, aborted_transactions: Any, fetch_offset: int,
                 key_deserializer: Any, value_deserializer: Any, check_crcs: bool,
                 isolation_level: int) -> None:
        super().__init__(tp, records, aborted_transactions, fetch_offset, key_deserializer,
                         value_deserializer, check_crcs, isolation_level)
        self._input = (tp.topic in self.input_topics
                       and isolation_level == fetcher.READ_UNCOMMITTED
                       and key_deserializer is None and value_deserializer is None)
        if self._input:
            # The batches' headers are read now, their records as they are iterated: the
            # last batch's end says how many records the fetch holds (`remaining`).
            batches = []
            memory_records = self._records
            try:
                while memory_records.has_next():
                    batches.append(memory_records.next_batch())
            except CorruptRecordException:
                pass  # raised again, as aiokafka raises it, once the batches before it are read
            self.end_offset = batches[-1].next_offset if batches else fetch_offset
            self._records_iterator = self._unpack_input(batches)

    def __iter__(self) -> Iterator[Any]:
        # The generator itself: FetchResult.getall's loop then resumes it without a call of
        # the interpreted __next__ per record. It stops where aiokafka's does and keeps
        # next_fetch_offset as it goes, so a fetch cut at max_poll_records resumes the same.
        if self._input and self._records_iterator is not None:
            return self._records_iterator
        return self

    def remaining(self) -> int | None:
        """The records of the fetch not yet read, at most (compaction leaves gaps in the
        offsets): what the batch consumer sizes its batches by (batch_consumer.py). None for
        the records of any other topic."""
        if not self._input:
            return None
        return self.end_offset - self.next_fetch_offset

    def _unpack_input(self, batches: list[Any]) -> Iterator[InputRecord]:
        """aiokafka's `_unpack_records` for a consumer that reads uncommitted records."""
        tp = self._tp
        topic, partition = tp.topic, tp.partition
        for batch in _scanned_then_rest(batches, self._records):
            if self._check_crcs and not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {tp}")
            if not batch.is_control_batch:  # transaction markers: no record of the topic
                for record in batch:
                    offset = record.offset
                    if offset < self.next_fetch_offset:
                        continue  # before the fetch position: a compacted or resent batch
                    self.next_fetch_offset = offset + 1
                    yield InputRecord(topic, partition, offset, record.timestamp, record.key,
                                      record.value, record.headers or NO_HEADERS)
            # the batch's own end: past records that compaction removed from its tail
            self.next_fetch_offset = batch.next_offset


def _scanned_then_rest(scanned: list[Any], memory_records: Any) -> Iterator[Any]:
    """The batches read ahead, then any the read-ahead stopped before (a corrupt one)."""
    yield from scanned
    while memory_records.has_next():
        yield memory_records.next_batch()


def install(topics: Iterable[str]) -> None:
    """Unpack these topics' fetched records as InputRecords, from every aiokafka consumer of
    this process that fetches them from now on."""
    InputPartitionRecords.input_topics = InputPartitionRecords.input_topics | frozenset(topics)
    fetcher.PartitionRecords = InputPartitionRecords
