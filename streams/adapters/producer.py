"""Producer SDK for web backends and CRM connectors: validate, encode, key by lead_id, send.

    from streams.adapters.producer import LeadActivityProducer

    with LeadActivityProducer() as producer:          # Kafka settings from DESIGN §8 variables
        producer.send({"event_id": "web-81723", "lead_id": "L-4f1c",
                       "occurred_at": "2026-11-26T10:15:00+00:00",
                       "source": "WEB", "activity": "PRICING_VIEWED"})
        report = producer.send_many(events)           # waits for every delivery
        assert not report.failed, report.failed

`send` raises InvalidEvent before anything is sent if the event breaks a rule; delivery errors
surface from the returned future (`.get()`), from `send_many`'s report, or from `flush()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from streams.adapters.settings import Settings
from streams.wire.avro import AvroCodec, avro_codec
from streams.wire.json_lines import normalize, to_kafka_record
from streams.wire.validation import InvalidEvent


@dataclass
class SendReport:
    sent: int = 0
    #: (position in the input, reason) for events rejected or not delivered
    failed: list[tuple[int, str]] = field(default_factory=list)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "acks": "all",
        "enable_idempotence": True,  # retries never duplicate or reorder a partition's records
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 2 * 1024 * 1024,
        "client_id": "leadstage-producer",
        **settings.security.kafka_python_kwargs(),
    }
    config.update(overrides)
    return config


class LeadActivityProducer:
    def __init__(self, settings: Settings | None = None, topic: str | None = None,
                 codec: AvroCodec | None = None, **producer_overrides: Any) -> None:
        self.settings = settings or Settings.from_env()
        self.topic = topic or self.settings.topic_activity
        self.codec = codec or avro_codec()
        self._producer = KafkaProducer(**producer_config(self.settings, **producer_overrides))

    def encode(self, event: Mapping[str, Any]) -> tuple[bytes, bytes]:
        """(key, value) for an event, or InvalidEvent. Pure: nothing is sent."""
        return self.encode_record(normalize(event))

    def encode_record(self, record: dict[str, Any]) -> tuple[bytes, bytes]:
        """(key, value) for an already normalised record (see activity_json.normalize)."""
        return to_kafka_record(record, self.codec, int(time.time() * 1000))

    def send_encoded(self, key: bytes, value: bytes) -> Any:
        return self._producer.send(self.topic, key=key, value=value)

    def send(self, event: Mapping[str, Any]) -> Any:
        """Validate, encode and send one event; returns kafka-python's future."""
        key, value = self.encode(event)
        return self.send_encoded(key, value)

    def send_many(self, events: Iterable[Mapping[str, Any]], timeout_s: float = 60.0
                  ) -> SendReport:
        """Send a batch without waiting per event, then wait for every delivery."""
        report = SendReport()
        pending = []
        for i, event in enumerate(events):
            try:
                pending.append((i, self.send(event)))
            except InvalidEvent as exc:
                report.failed.append((i, str(exc)))
        self._producer.flush(timeout=timeout_s)
        for i, future in pending:
            try:
                future.get(timeout=0)
                report.sent += 1
            except KafkaError as exc:
                report.failed.append((i, f"not delivered: {type(exc).__name__}"))
        report.failed.sort()
        return report

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Close, waiting at most `timeout_s` for records not yet acknowledged; those that
        never are have failed their futures. kafka-python's close raises instead of giving up
        on them (and would try again, noisily, at exit), so the sender is stopped by hand."""
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaTimeoutError:
            producer = self._producer
            if producer._sender is not None:  # kafka-python 3.0 internals
                producer._sender.force_close()
            producer._closed = True

    def __enter__(self) -> LeadActivityProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
