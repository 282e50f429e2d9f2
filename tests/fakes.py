"""Fakes shared by the unit tests: an in-memory lead store, a sender that records (and can fail)
what the worker flushes, input records shaped as aiokafka's, one LeadActivity builder, and a
worker pipeline built on them."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from aiokafka.partitioner import murmur2

from streams.core.definitions.compiler import CompiledDefinitions, compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.lead_state import LeadState, dumps, loads
from streams.core.stage_machine import StageMachine
from streams.wire.avro import avro_codec
from streams.worker.commit import OutputTopics
from streams.worker.metrics import Metrics
from streams.worker.pause_fence import PauseFence
from streams.worker.pipeline import PART_RECORDS, LeadPipeline
from tests.paths import REPO_ROOT

#: The broker's default limit on one record batch (message.max.bytes).
BROKER_RECORD_LIMIT = 1_048_588


def activity_record(event_id: str = "e1", lead_id: str = "L1", occurred_at: int | None = None,
                    activity: str = "CONTACTED", **fields: Any) -> dict[str, Any]:
    """A complete LeadActivity record as the codec reads and writes it."""
    return {"event_id": event_id, "lead_id": lead_id,
            "occurred_at": int(time.time() * 1000) - 60_000 if occurred_at is None
            else occurred_at,
            "source": "WEB", "activity": activity, "decision_by": None, "amount": None,
            "currency": None, "team": None, "assessed_stage": None, "reason": None,
            "attributes": {}, **fields}


@dataclass
class Message:
    """An input record as aiokafka's ConsumerRecord carries it."""

    key: bytes | None
    value: bytes | None
    topic: str = "activity"
    partition: int = 0
    offset: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def partition_of(key: bytes, partitions: int) -> int:
    """Java's default partitioner (murmur2), as the worker expects producers to use."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def message(record: dict[str, Any], offset: int = 0, partitions: int = 1,
            key: bytes | str | None = "lead") -> Message:
    """`record` encoded on the partition its lead_id maps to (or with another `key`)."""
    value = avro_codec().encode("LeadActivity", record)
    k = record["lead_id"].encode() if key == "lead" else key
    partition = partition_of(record["lead_id"].encode(), partitions)
    return Message(k if not isinstance(k, str) else k.encode(), value, partition=partition,
                   offset=offset)


class MemoryStore:
    changelog_topic = "leads-changelog"

    def __init__(self) -> None:
        self.dbs: dict[int, dict[str, bytes]] = defaultdict(dict)

    def get(self, partition: int, lead_id: str) -> LeadState | None:
        raw = self.dbs[partition].get(lead_id)
        return None if raw is None else loads(raw)

    def get_raw_many(self, partition: int, lead_ids: list[str]) -> list[bytes | None]:
        return [self.dbs[partition].get(i) for i in lead_ids]

    encode = staticmethod(dumps)
    decode = staticmethod(loads)

    def put_local_many(self, entries: Any, persisted: dict[int, int]) -> None:
        for partition, lead_id, value in entries:
            self.dbs[partition][lead_id] = value

    def raw_items(self, partition: int) -> Any:
        return [(k.encode(), v) for k, v in self.dbs[partition].items() if k != "watermark"]

    def find(self, lead_id: str) -> LeadState | None:
        for partition in self.dbs:
            state = self.get(partition, lead_id)
            if state is not None:
                return state
        return None

    def watermark(self, partition: int) -> int:
        return int(self.dbs[partition].get("watermark", b"0"))

    def put_watermark_local(self, partition: int, value: bytes) -> None:
        self.dbs[partition]["watermark"] = value


class RecordTooLarge(Exception):
    """What the broker answers to a record over its limit."""


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None

    @property
    def size(self) -> int:
        return (len(self.key or b"") + len(self.value or b"")
                + sum(len(k) + len(v) for k, v in self.headers))


@dataclass
class Sender:
    """Records what is flushed, refuses records over the broker's limit (as the broker does,
    per batch), and can fail its n-th flush (everything in it is lost)."""

    fail_on_flush: int | None = None
    partitions: int = 1
    refuse_topics: frozenset[str] = frozenset()
    flushes: int = 0
    pending: list[Sent] = field(default_factory=list)
    published: list[Sent] = field(default_factory=list)
    dropped: list[tuple[str, int]] = field(default_factory=list)

    async def prepare(self, topics: list[str]) -> None:
        pass

    def partition_for(self, topic: str, key: bytes) -> int:
        return partition_of(key, self.partitions)

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: Any = None, partition: int | None = None) -> None:
        self.pending.append(Sent(topic, key, value, list(headers or []), partition))

    async def flush(self, tolerate: Any = (), dropped: Any = None) -> dict[tuple[str, int], int]:
        return await (await self.send(tolerate, dropped))

    async def send(self, tolerate: Any = (), dropped: Any = None
                   ) -> asyncio.Future[dict[tuple[str, int], int]]:
        """As BatchSender.send: what was added is taken now, and answered in a task."""
        self.flushes += 1
        batch, self.pending = self.pending, []
        return asyncio.ensure_future(self._answer(self.flushes, batch, tolerate, dropped))

    async def _answer(self, flush: int, batch: list[Sent], tolerate: Any, dropped: Any
                      ) -> dict[tuple[str, int], int]:
        if flush == self.fail_on_flush:
            raise ConnectionError("broker gone")
        for sent in batch:
            refused = sent.topic in self.refuse_topics or sent.size > BROKER_RECORD_LIMIT
            if refused and sent.topic in tolerate:
                self.dropped.append((sent.topic, 1))
                if dropped is not None:
                    dropped(sent.topic, 0, 1, RecordTooLarge())
                continue
            if refused:
                raise RecordTooLarge(f"{sent.size} bytes to {sent.topic}")
            self.published.append(sent)
        return {}

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.published if s.topic == topic]

    def decoded(self, topic: str) -> list[dict[str, Any]]:
        return [avro_codec().decode(s.value)[1] for s in self.on(topic) if s.value is not None]


OUTPUTS = OutputTopics("changes", "stages", "dlq")


@cache
def default_definitions() -> CompiledDefinitions:
    """definitions/lead-stages.yaml, compiled once for every test that needs it."""
    return compile_definitions(load_file(REPO_ROOT / "definitions" / "lead-stages.yaml"))


class Fatal(Exception):
    """Raised where the worker would end its process (a Kafka write the protocol needs failed)."""


def raise_fatal(exc: BaseException) -> None:
    raise Fatal(exc) from exc


def lead_pipeline(store: MemoryStore | None = None, sender: Sender | None = None, *,
                  machine: StageMachine | None = None,
                  on_fatal: Callable[[BaseException], Any] = raise_fatal,
                  part_records: int = PART_RECORDS,
                  fence: PauseFence | None = None) -> LeadPipeline:
    """The worker's pipeline on the fakes (default definitions unless `machine`), with its
    metrics initialised as the worker's assembly does; a fatal failure raises Fatal instead of
    ending the test process."""
    machine = machine or StageMachine(default_definitions())
    pipeline = LeadPipeline(machine, store if store is not None else MemoryStore(), OUTPUTS,
                            Metrics(), sender if sender is not None else Sender(), fence,
                            on_fatal=on_fatal, part_records=part_records)
    pipeline.metrics.initialise(machine.definitions.stage_names, machine.handoff_stage,
                                machine.verdict, tuple(machine.definitions.properties))
    return pipeline


T = TypeVar("T")


def settled(pipeline: LeadPipeline, work: Awaitable[T]) -> T:
    """Runs a batch, sweep or scan of `pipeline` (in a loop of its own) to the end the worker
    waits for before it lets its partitions go: its changes acknowledged (`drain`)."""
    async def whole() -> T:
        result = await work
        await pipeline.drain()
        return result
    return asyncio.run(whole())
