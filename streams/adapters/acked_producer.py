"""A Kafka producer for asyncio services that answer only after Kafka acknowledged: the
collector (DESIGN §9) awaits one future per request, resolved when the last of its records is
acknowledged (acks=all) or has failed.

librdkafka (confluent-kafka), not aiokafka: its batching, retries and idempotence run in C
threads, where aiokafka's send() is a coroutine of pure Python per record; measured on the same
broker, about 4x the records per second (bench/README.md, "The collector"). Delivery reports are
served by one thread blocked in poll(), outside the event loop; it wakes the loop once per
batch, not once per record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.adapters.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    acknowledged: int = 0
    failed: int = 0
    #: librdkafka's name of the first failure, e.g. "_MSG_TIMED_OUT"
    error: str | None = None


class KafkaUnavailable(Exception):
    """Kafka did not take the records at all (the local queue is full, the producer is
    fenced or closed)."""


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """librdkafka properties for the DESIGN §8 settings."""
    security = settings.security
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers,
                              "security.protocol": security.protocol}
    if security.sasl_mechanism:
        config.update({"sasl.mechanisms": security.sasl_mechanism,
                       "sasl.username": security.sasl_username,
                       "sasl.password": security.sasl_password})
    if security.ssl_cafile:
        config["ssl.ca.location"] = security.ssl_cafile
    return config


class _Batch:
    """The delivery state of one send_batch call, counted down by the poll thread."""

    __slots__ = ("future", "lock", "loop", "outcome", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[BatchOutcome] = loop.create_future()
        self.outcome = BatchOutcome()
        self.remaining = size
        self.lock = threading.Lock()

    def delivered(self, err: KafkaError | None, _msg: object) -> None:
        with self.lock:
            if err is None:
                self.outcome.acknowledged += 1
            else:
                self.outcome.failed += 1
                if self.outcome.error is None:
                    self.outcome.error = err.name()
            self.remaining -= 1
            done = self.remaining == 0
        if done:
            self.loop.call_soon_threadsafe(self._resolve)

    def refused(self, count: int, error: str) -> None:
        """`count` records were never handed to Kafka: they count as failed now."""
        with self.lock:
            self.outcome.failed += count
            self.outcome.error = self.outcome.error or error
            self.remaining -= count
            done = self.remaining == 0
        if done:
            self._resolve()

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.outcome)


class AckedProducer:
    def __init__(self, settings: Settings, topic: str, delivery_timeout_ms: int = 10_000,
                 client_id: str = "leadstage-collect", **overrides: Any) -> None:
        self.topic = topic
        self._config = {
            **librdkafka_config(settings),
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,  # retries never duplicate or reorder a partition
            # the Java client's partitioner: a lead's events land where the worker expects
            # them (librdkafka's default, CRC32, would make the worker re-route them)
            "partitioner": "murmur2_random",
            "linger.ms": 2,
            "message.timeout.ms": delivery_timeout_ms,
            "queue.buffering.max.messages": 200_000,
            "error_cb": self._on_error,
            **overrides,
        }
        self._producer = Producer(self._config)
        self._fatal: str | None = None
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-acks", daemon=True)
        self._poller.start()
        #: True after librdkafka said every broker is down, until a record is acknowledged
        self.brokers_down = False

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err.name()
            log.critical("Kafka producer fatal error %s: %s; a new producer takes over",
                         err.name(), err.str())
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down = True
            log.warning("no Kafka broker reachable at %s", self._config["bootstrap.servers"])
        else:
            log.info("Kafka producer: %s", err.str())

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def send_batch(self, records: Sequence[tuple[bytes, bytes]]) -> BatchOutcome:
        """Hand every (key, value) to Kafka and wait until each is acknowledged or failed.
        KafkaUnavailable when Kafka could not take any of them."""
        if self._fatal is not None:
            self._renew()
        batch = _Batch(asyncio.get_running_loop(), len(records))
        if not records:
            return batch.outcome
        produce, topic, delivered = self._producer.produce, self.topic, batch.delivered
        handed = 0
        try:
            for key, value in records:
                produce(topic, value, key, on_delivery=delivered)
                handed += 1
        except (BufferError, KafkaException) as exc:
            if handed == 0:
                raise KafkaUnavailable(str(exc)) from None
            # the records handed over are still reported; the rest never will be
            batch.refused(len(records) - handed, "_QUEUE_FULL")
        outcome = await batch.future
        if outcome.acknowledged:
            self.brokers_down = False
        return outcome

    def _renew(self) -> None:
        """Replace a producer that hit a fatal error (e.g. its idempotence state was lost)."""
        old = self._producer
        self._producer = Producer(self._config)
        self._fatal = None
        old.flush(0)

    def close(self, timeout_s: float = 10.0) -> int:
        """Wait up to `timeout_s` for records in flight; the number still not delivered."""
        remaining = self._producer.flush(timeout_s)
        self._stopping.set()
        self._poller.join(timeout=5)
        return int(remaining)
