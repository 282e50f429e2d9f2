"""The input topic's records unpacked by input_records: on the same fetched bytes, the records
and fetch positions of aiokafka's own PartitionRecords, compiled and interpreted alike; other
topics, and a consumer of committed transactions only, keep aiokafka's ConsumerRecords."""

from __future__ import annotations

import gc
import importlib.util
import struct
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord, TopicPartition

import streams
from streams.adapters import input_records

TOPIC = "leads-input"
#: aiokafka's own class, whatever install() did to its fetcher module since
_AIOKAFKA = input_records._AIOKAFKA_RECORDS
TP = TopicPartition(TOPIC, 5)
_CONTROL = 0x20  # the attributes bit of a control batch (transaction markers)


def _interpreted() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "input_records_interpreted", streams.source_of(input_records.__name__))
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


INTERPRETED = _interpreted()


@pytest.fixture(params=["compiled", "interpreted"])
def module(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    chosen = input_records if request.param == "compiled" else INTERPRETED
    saved_topics = chosen.InputPartitionRecords.input_topics
    chosen.InputPartitionRecords.input_topics = frozenset({TOPIC})
    yield chosen
    chosen.InputPartitionRecords.input_topics = saved_topics


def test_the_tested_build_runs_it_compiled() -> None:
    assert streams.running_compiled(input_records)
    assert not streams.running_compiled(INTERPRETED)


def _batch(base: int, count: int, headers: bool = False, control: bool = False) -> bytes:
    builder = DefaultRecordBatchBuilder(2, 0, 1 if control else 0, 7 if control else -1,
                                        0 if control else -1, -1, 10**6)
    for i in range(count):
        key = None if i == 2 else f"lead-{base + i}".encode()
        value = None if i == 3 else b"\x02" * (40 + i)
        builder.append(i, 1_786_000_000_000 + base + i, key, value,
                       [("leadstage.rerouted.from", b"3:17")] if headers and i % 2 else [])
    buf = builder.build()
    struct.pack_into(">q", buf, 0, base)
    if control:  # the attributes bit set, and the CRC (attributes to the end) made again
        attributes = struct.unpack_from(">h", buf, 21)[0] | _CONTROL
        struct.pack_into(">h", buf, 21, attributes)
        struct.pack_into(">I", buf, 17, calc_crc32c(bytes(buf[21:])))
    return bytes(buf)


def _fields(record: Any) -> tuple[Any, ...]:
    return (record.topic, record.partition, record.offset, record.timestamp, record.key,
            record.value, list(record.headers))


def _aiokafka(data: bytes, fetch_offset: int) -> tuple[list[tuple[Any, ...]], int]:
    unpacked = _AIOKAFKA(TP, MemoryRecords(data), [], fetch_offset, None, None, True,
                       fetcher.READ_UNCOMMITTED)
    return [_fields(r) for r in unpacked], unpacked.next_fetch_offset


def _ours(module: ModuleType, data: bytes, fetch_offset: int, tp: TopicPartition = TP,
          isolation: int = fetcher.READ_UNCOMMITTED) -> tuple[list[Any], int]:
    unpacked = module.InputPartitionRecords(tp, MemoryRecords(data), [], fetch_offset, None,
                                            None, True, isolation)
    return list(unpacked), unpacked.next_fetch_offset


def test_records_and_position_are_aiokafkas_from_the_fetch_offset_on(module: ModuleType) -> None:
    # a fetch begins with the batch that holds its offset, anywhere in that batch
    tail = _batch(106, 5, headers=True) + _batch(111, 4)
    for data, fetch_offset in ((_batch(100, 6) + tail, 100), (_batch(100, 6) + tail, 103),
                               (tail, 106), (tail, 108)):
        ours, position = _ours(module, data, fetch_offset)
        assert all(type(r) is module.InputRecord for r in ours)
        assert ([_fields(r) for r in ours], position) == _aiokafka(data, fetch_offset)
        assert [r.offset for r in ours] == list(range(fetch_offset, 115)) and position == 115


def _tracked_allocations(module: ModuleType, data: bytes) -> tuple[list[Any], int]:
    """The records of `data`, and how much unpacking them added to the count of tracked
    objects that triggers a young collection."""
    gc.disable()
    try:
        counted = gc.get_count()[0]
        ours, _ = _ours(module, data, 0)
        return ours, gc.get_count()[0] - counted
    finally:
        gc.enable()


def test_a_fetch_adds_nothing_the_cycle_collector_counts_or_walks(module: ModuleType) -> None:
    # compiled, records are untracked and those without headers share one empty tuple: a
    # young collection is triggered by tracked allocations, and walks every tracked object
    ours, added = _tracked_allocations(module, _batch(0, 1000))
    assert [r.offset for r in ours] == list(range(1000))
    assert all(r.headers is module.NO_HEADERS for r in ours)
    if module is input_records:
        assert not any(gc.is_tracked(r) for r in ours)
        assert added <= 10
    else:  # interpreted: one tracked object per record, and no list
        assert 1000 <= added <= 1010


def test_headers_are_kept_as_fetched(module: ModuleType) -> None:
    ours, _ = _tracked_allocations(module, _batch(0, 4, headers=True))
    assert [list(r.headers) for r in ours] == [
        [], [("leadstage.rerouted.from", b"3:17")], [], [("leadstage.rerouted.from", b"3:17")]]


def test_a_transaction_marker_yields_no_record_and_moves_the_position_past_it(
        module: ModuleType) -> None:
    data = _batch(0, 4) + _batch(4, 1, control=True) + _batch(5, 3)
    ours, position = _ours(module, data, 0)
    assert [r.offset for r in ours] == [0, 1, 2, 3, 5, 6, 7]
    assert ([_fields(r) for r in ours], position) == _aiokafka(data, 0)
    marker_only, position = _ours(module, _batch(9, 1, control=True), 9)
    assert (marker_only, position) == ([], 10)


def test_a_corrupt_batch_is_refused_as_aiokafka_refuses_it(module: ModuleType) -> None:
    data = bytearray(_batch(0, 3) + _batch(3, 3))
    data[-5] ^= 0xFF  # a byte of the second batch's last value
    with pytest.raises(CorruptRecordException, match="Invalid CRC"):
        list(_AIOKAFKA(TP, MemoryRecords(bytes(data)), [], 0, None, None, True,
                       fetcher.READ_UNCOMMITTED))
    unpacked = module.InputPartitionRecords(TP, MemoryRecords(bytes(data)), [], 0, None, None,
                                            True, fetcher.READ_UNCOMMITTED)
    iterator = iter(unpacked)
    assert [next(iterator).offset for _ in range(3)] == [0, 1, 2]
    with pytest.raises(CorruptRecordException, match="Invalid CRC"):
        next(iterator)


def test_a_fetch_cut_at_max_records_resumes_where_it_stopped(module: ModuleType) -> None:
    # FetchResult.getall iterates the records afresh at every poll and stops at max_records,
    # then reads next_fetch_offset as the consumer's position
    data = _batch(0, 7) + _batch(7, 7)
    unpacked = module.InputPartitionRecords(TP, MemoryRecords(data), [], 0, None, None, True,
                                            fetcher.READ_UNCOMMITTED)
    polls: list[tuple[list[int], int]] = []
    while True:
        taken: list[int] = []
        for record in unpacked:
            taken.append(record.offset)
            if len(taken) == 5:
                break
        polls.append((taken, unpacked.next_fetch_offset))
        if len(taken) < 5:
            break
    assert polls == [([0, 1, 2, 3, 4], 5), ([5, 6, 7, 8, 9], 10), ([10, 11, 12, 13], 14)]


def test_other_topics_and_committed_only_consumers_keep_aiokafkas_records(
        module: ModuleType) -> None:
    data = _batch(0, 3)
    changelog, _ = _ours(module, data, 0, tp=TopicPartition("app-leads-changelog", 5))
    committed, _ = _ours(module, data, 0, isolation=fetcher.READ_COMMITTED)
    for records in (changelog, committed):
        assert [type(r) for r in records] == [ConsumerRecord] * 3
    assert [_fields(r) for r in committed] == _aiokafka(data, 0)[0]


def test_install_makes_aiokafkas_fetcher_unpack_the_topic_with_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetcher, "PartitionRecords", fetcher.PartitionRecords)
    monkeypatch.setattr(input_records.InputPartitionRecords, "input_topics", frozenset())
    input_records.install(["a"])
    input_records.install(["b"])
    assert fetcher.PartitionRecords is input_records.InputPartitionRecords
    assert input_records.InputPartitionRecords.input_topics == {"a", "b"}


def test_remaining_counts_the_records_left_from_the_fetch_position(module: ModuleType) -> None:
    # what the batch consumer sizes its batches by (test_whole_partitions.py)
    data = _batch(100, 6) + _batch(106, 5) + _batch(111, 4)
    unpacked = module.InputPartitionRecords(TP, MemoryRecords(data), [], 103, None, None, True,
                                            fetcher.READ_UNCOMMITTED)
    assert unpacked.remaining() == 12  # the first batch begins before the fetch offset
    iterator = iter(unpacked)
    for _ in range(5):
        next(iterator)
    assert unpacked.remaining() == 7
    assert len(list(iterator)) == 7 and unpacked.remaining() == 0
    other = module.InputPartitionRecords(TopicPartition("app-leads-changelog", 5),
                                         MemoryRecords(data), [], 100, None, None, True,
                                         fetcher.READ_UNCOMMITTED)
    assert other.remaining() is None


def test_a_malformed_batch_is_refused_where_aiokafka_refuses_it(module: ModuleType) -> None:
    # a batch whose length is under any batch's size: aiokafka raises once the batches before
    # it are read, and so does this module although it reads the batches' headers ahead
    data = _batch(0, 3) + struct.pack(">qi", 3, 5) + b"\x00" * 5
    for records in (_AIOKAFKA(TP, MemoryRecords(data), [], 0, None, None, True,
                              fetcher.READ_UNCOMMITTED),
                    module.InputPartitionRecords(TP, MemoryRecords(data), [], 0, None, None,
                                                 True, fetcher.READ_UNCOMMITTED)):
        iterator = iter(records)
        assert [next(iterator).offset for _ in range(3)] == [0, 1, 2]
        with pytest.raises(CorruptRecordException, match="minimum record overhead"):
            next(iterator)
