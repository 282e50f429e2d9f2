"""Routes dead letters from the input gate to the DLQ topic and counts them.

The sending function is injected, so the Faust worker and kafka-python tools share this code:
`send(topic, key, value, headers)` must not wait for the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.wire.gate import DeadLetter
from streams.wire.reasons import Reason
from streams.worker.metrics import Metrics

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Any]


class DeadLetterRouter:
    def __init__(self, send: Send, dlq_topic: str, metrics: Metrics) -> None:
        self._send = send
        self.topic = dlq_topic
        self._counter = metrics.dead_letters

    def route(self, dead: DeadLetter, topic: str, partition: int, offset: int) -> Any:
        self._counter.labels(reason=Reason(dead.reason).value).inc()
        key, value, headers = dead.record(topic, partition, offset)
        return self._send(self.topic, key, value, headers)
