"""The lead table, addressed by partition: the worker writes a lead's state to the table's
changelog, waits for Kafka to acknowledge it, and only then into local RocksDB, so the local store
never holds a state that a recovering worker elsewhere would not also see.

Faust's own `table[key] = value` needs a current stream event to pick the changelog partition,
which batched processing does not have; the partition here is the lead's input partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rocksdict import WriteBatch, WriteOptions

from streams.core.lead_state import LeadState, dumps, loads

#: Key of each partition's "outboxes published up to batch N" record (ids cannot start with NUL).
WATERMARK_KEY = b"\x00leadstage:published-through"
#: Local writes skip RocksDB's write-ahead log, as Kafka Streams' stores do: every state is on
#: the changelog before it is written here, and each write batch carries the changelog offset it
#: reaches, so whatever prefix of batches survives a crash, recovery replays the changelog from
#: the offset that prefix holds. The log doubled the cost of a write (bench/README.md).
_NO_WAL = WriteOptions()
_NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method


class LeadStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def _store(self) -> Any:
        return self.table.data

    def _db(self, partition: int) -> Any:
        return self._store._db_for_partition(partition)

    def get(self, partition: int, lead_id: str) -> LeadState | None:
        raw = self._db(partition).get(lead_id.encode())
        return None if raw is None else loads(raw)

    def get_raw_many(self, partition: int, lead_ids: list[str]) -> list[bytes | None]:
        """The encoded states of these leads (None for a new lead), in one RocksDB multi-get;
        decoding is the caller's, so one unreadable state can be dealt with on its own."""
        found: list[bytes | None] = self._db(partition).get([i.encode() for i in lead_ids])
        return found

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    @staticmethod
    def encode(state: LeadState) -> bytes:
        return dumps(state)

    def put_local_many(self, entries: Iterable[tuple[int, str, bytes]],
                       persisted: dict[int, int]) -> None:
        """Write states, one RocksDB write batch per partition. `persisted` (partition -> last
        changelog offset written) goes into the same batch: it tells Faust's recovery where to
        resume, so it must never be on disk without the states it covers."""
        batches: dict[int, WriteBatch] = {}
        for partition, lead_id, value in entries:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(lead_id.encode(), value)
        offset_key = self._store.offset_key
        for partition, offset in persisted.items():
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(offset_key, str(offset).encode())  # as Faust's set_persisted_offset
        for partition, batch in batches.items():
            self._db(partition).write(batch, _NO_WAL)

    def watermark(self, partition: int) -> int:
        raw = self._db(partition).get(WATERMARK_KEY)
        return int(raw) if raw else 0

    def put_watermark_local(self, partition: int, value: bytes) -> None:
        # also without the log, so the local store never holds a watermark ahead of the
        # states it covers (a lost watermark only republishes the same changes)
        self._db(partition).put(WATERMARK_KEY, value, _NO_WAL)

    decode = staticmethod(loads)

    def raw_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every lead's (key, encoded state) in the partition; decoding is the caller's, so one
        unreadable state can be dealt with on its own."""
        offset_key = self._store.offset_key
        for key, value in self._db(partition).items():
            if key != offset_key and not key.startswith(b"\x00"):
                yield key, value

    def find(self, lead_id: str) -> LeadState | None:
        """The lead's state if a partition held by this worker has it."""
        key = lead_id.encode()
        for db in list(self._store._dbs.values()):
            raw = db.get(key)
            if raw is not None:
                return loads(raw)
        return None
