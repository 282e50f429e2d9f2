"""A reader of stage changes for downstream services (DESIGN §10): CRM sync, sales alerting.

    from streams.adapters.reader import StageChangeReader, StageChange, CurrentStage

    with StageChangeReader("crm-sync") as reader:            # a consumer group
        for item in reader:                                  # blocks; Ctrl-C or close() ends it
            if isinstance(item, StageChange):
                crm.set_stage(item.lead_id, item.stage)      # item.record: every field
            elif item.stage is None:                         # CurrentStage tombstone
                crm.forget(item.lead_id)                     # left the population or erased

Guarantees:
- at least once: a record's offset is committed only after the loop body returned for it and
  for every record before it on its partition (an exception in the body commits what was done
  and propagates; the record is read again by the group's next member);
- each change once: re-emissions (the same `event_id`, after a worker crash) are skipped, within
  a bounded memory of recent ids (`dedup_capacity`);
- gaps reported: a change whose sequence is not the next one for its lead goes to `on_gap` and
  `leadstage_reader_gaps_total` (the change itself is still delivered);
- any writer schema the AvroCodec knows is resolved to the current one.

Settings (bootstrap servers, topics, security) come from the DESIGN §8 environment variables.
kafka-python: a blocking iterator suits downstream services; nothing here is on the worker's
hot path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from streams.adapters.settings import Settings
from streams.wire.avro import AvroCodec, DecodeError, avro_codec


@dataclass(frozen=True)
class StageChange:
    """A LeadStageChanged record, decoded."""

    lead_id: str
    event_id: str
    sequence: int
    previous_stage: str | None
    stage: str | None
    record: dict[str, Any]
    partition: int
    offset: int


@dataclass(frozen=True)
class CurrentStage:
    """The lead's current stage from `lead-stages`; `stage` None is a tombstone: the lead left
    the population or was erased (`record` None then)."""

    lead_id: str
    stage: str | None
    record: dict[str, Any] | None
    partition: int
    offset: int


@dataclass(frozen=True)
class Gap:
    lead_id: str
    expected: int
    got: int


class _Bounded(OrderedDict[str, int]):
    """A mapping that forgets its least recently touched keys past a capacity."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def touch(self, key: str, value: int) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.capacity:
            self.popitem(last=False)


class StageChangeReader:
    def __init__(self, group_id: str, settings: Settings | None = None, *,
                 topics: Sequence[str] | None = None,
                 on_gap: Callable[[Gap], Any] | None = None,
                 on_undecodable: Callable[[Any, Exception], Any] | None = None,
                 dedup_capacity: int = 100_000, metrics: CollectorRegistry | None = None,
                 codec: AvroCodec | None = None, poll_timeout_ms: int = 500,
                 **consumer_overrides: Any) -> None:
        self.settings = settings or Settings.from_env()
        self.topics = list(topics or (self.settings.topic_stage_changes,
                                      self.settings.topic_stages))
        self.on_gap = on_gap
        self.on_undecodable = on_undecodable
        self.codec = codec or avro_codec()
        self.poll_timeout_ms = poll_timeout_ms
        self._seen = _Bounded(dedup_capacity)  # event_id -> sequence
        self._last = _Bounded(dedup_capacity)  # lead_id -> last sequence delivered
        self._closed = False
        r = metrics or CollectorRegistry()
        self.metrics = r
        self.gaps = Counter("leadstage_reader_gaps", "Changes whose sequence skipped one or more "
                            "of their lead's.", registry=r)
        self.duplicates = Counter("leadstage_reader_duplicates", "Re-emitted changes skipped.",
                                  registry=r)
        self._consumer = KafkaConsumer(
            *self.topics, group_id=group_id, bootstrap_servers=self.settings.bootstrap_list,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"leadstage-reader-{group_id}",
            **{**self.settings.security.kafka_python_kwargs(), **consumer_overrides})

    def __enter__(self) -> StageChangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._consumer.close(autocommit=False)

    def __iter__(self) -> Iterator[StageChange | CurrentStage]:
        consumer = self._consumer
        while not self._closed:
            batch = consumer.poll(timeout_ms=self.poll_timeout_ms)
            done: dict[TopicPartition, int] = {}
            try:
                for tp, records in batch.items():
                    for r in records:
                        item = self._decode(r)
                        if item is not None:
                            yield item  # the loop body runs here
                        done[tp] = r.offset + 1
            finally:
                if done and not self._closed:
                    consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                                     for tp, offset in done.items()})

    def _decode(self, r: Any) -> StageChange | CurrentStage | None:
        lead_id = (r.key or b"").decode(errors="replace")
        if r.topic == self.settings.topic_stages and r.value is None:
            return CurrentStage(lead_id, None, None, r.partition, r.offset)
        try:
            kind, record = self.codec.decode(r.value)
        except DecodeError as exc:
            if self.on_undecodable is not None:
                self.on_undecodable(r, exc)
            return None
        if kind == "LeadStage":
            return CurrentStage(record["lead_id"], record["stage"], record, r.partition,
                                r.offset)
        event_id, sequence = record["event_id"], record["sequence"]
        if event_id in self._seen:
            self.duplicates.inc()
            return None
        self._seen.touch(event_id, sequence)
        last = self._last.get(record["lead_id"])
        if last is not None and sequence > last + 1:
            self.gaps.inc()
            if self.on_gap is not None:
                self.on_gap(Gap(record["lead_id"], last + 1, sequence))
        if last is None or sequence > last:
            self._last.touch(record["lead_id"], sequence)
        return StageChange(record["lead_id"], event_id, sequence, record["previous_stage"],
                           record["stage"], record, r.partition, r.offset)
