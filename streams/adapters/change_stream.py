"""The stage-change topic as an asyncio stream for the forwarder (DESIGN §10): fetch decoded
changes, commit exactly the offsets the caller says are done, and dead-letter to a topic.

aiokafka, because the forwarder is one event loop with its HTTP client: its rate is bounded by
the receivers' answers (milliseconds per request), not by the Kafka client, and an async
consumer lets hundreds of deliveries wait concurrently without threads.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.adapters.settings import KafkaSecurity, Settings
from streams.adapters.topics import ensure_topic
from streams.wire.avro import AvroCodec, DecodeError, avro_codec


def aiokafka_security(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka keyword arguments for the DESIGN §8 security settings."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    if security.protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=security.ssl_cafile)
    if security.sasl_mechanism:
        kwargs.update(sasl_mechanism=security.sasl_mechanism,
                      sasl_plain_username=security.sasl_username,
                      sasl_plain_password=security.sasl_password)
    return kwargs


@dataclass(frozen=True)
class FetchedChange:
    """One record of the change topic: decoded (`change`), or None when undecodable."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    change: dict[str, Any] | None


class ChangeStream:
    def __init__(self, group_id: str, topic: str, settings: Settings | None = None,
                 codec: AvroCodec | None = None, max_records: int = 500) -> None:
        self.settings = settings or Settings.from_env()
        self.topic = topic
        self.codec = codec or avro_codec()
        self.max_records = max_records
        security = aiokafka_security(self.settings.security)
        self.consumer = AIOKafkaConsumer(
            topic, group_id=group_id, bootstrap_servers=self.settings.bootstrap_list,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"leadstage-forward-{group_id}", **security)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_list, acks="all",
            enable_idempotence=True, client_id=f"leadstage-forward-{group_id}", **security)

    async def start(self, dead_letter_topic: str | None = None) -> None:
        """Connect; create the dead-letter topic if it is missing (as the worker creates its
        own), with the partitions of the change topic."""
        if dead_letter_topic is not None:
            await self._ensure_topic(dead_letter_topic)
        await self.producer.start()
        await self.consumer.start()

    async def _ensure_topic(self, name: str) -> None:
        # kafka-python's admin, as for the worker's topics: aiokafka's NewTopic refuses the
        # replication factor -1 (the broker's default), and reports a refused topic only in
        # its response
        await asyncio.to_thread(ensure_topic, self.settings, name)

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def fetch(self, timeout_ms: int = 500) -> list[FetchedChange]:
        """The next records, in offset order per partition."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms,
                                              max_records=self.max_records)
        out = []
        for tp, records in batches.items():
            for r in records:
                try:
                    change = self.codec.decode(r.value or b"", expect="LeadStageChanged")[1]
                except DecodeError:
                    change = None
                out.append(FetchedChange(tp.partition, r.offset, r.key, r.value, change))
        return out

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit, per partition, the offset of the next record not yet done."""
        if offsets:
            await self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "")
                                        for p, o in offsets.items()})

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    async def dead_letter(self, topic: str, record: FetchedChange,
                          headers: list[tuple[str, bytes]]) -> None:
        """The original record to `topic`, with `headers` and where it came from; waits for
        the acknowledgement (a change is done only once dead-lettered durably)."""
        await self.producer.send_and_wait(topic, key=record.key, value=record.value, headers=[
            *headers, ("leadstage.original.topic", self.topic.encode()),
            ("leadstage.original.partition", str(record.partition).encode()),
            ("leadstage.original.offset", str(record.offset).encode())])
