"""Raw Kafka record -> valid LeadActivity, ignored record, or dead letter. Never raises.

The worker calls `admit` for every record it consumes; dead letters keep the original key and
bytes (cut to fit the DLQ, with headers saying so) and name the error, the original topic,
partition and offset in their headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from streams.core.routing import UNKNOWN, route
from streams.wire.avro import AvroCodec, DecodeError, avro_codec
from streams.wire.reasons import Reason
from streams.wire.validation import MAX_MESSAGE_BYTES, InvalidEvent, check_size, validate


class Admission(Enum):
    """What the gate makes of a record."""

    APPLY = "apply"  # a valid event
    IGNORE = "ignore"  # an activity this reader does not know (from a newer producer)
    DEAD = "dead"  # a dead letter


APPLY, IGNORE, DEAD = Admission.APPLY, Admission.IGNORE, Admission.DEAD
MAX_HEADER_MESSAGE = 500
#: A dead letter (key + value + headers) never exceeds this, well below the broker's default
#: 1 MiB record limit and within one producer batch, so the DLQ can always take it.
DLQ_RECORD_LIMIT = 512 * 1024
_HEADER_ROOM = 2048  # the headers below, with the longest error message and topic name


@dataclass(slots=True)
class DeadLetter:
    reason: Reason
    error_class: str
    message: str
    key: bytes | None
    value: bytes | None

    def headers(self, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        return [
            ("leadstage.error.reason", self.reason.encode()),
            ("leadstage.error.class", self.error_class.encode()),
            ("leadstage.error.message",
             self.message[:MAX_HEADER_MESSAGE].encode(errors="replace")),
            ("leadstage.original.topic", topic[:249].encode(errors="replace")),
            ("leadstage.original.partition", str(partition).encode()),
            ("leadstage.original.offset", str(offset).encode()),
        ]

    def record(self, topic: str, partition: int, offset: int
               ) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
        """(key, value, headers) for the DLQ, cut to DLQ_RECORD_LIMIT. A cut record says so in
        `leadstage.truncated` (which parts) and `leadstage.original.size` (key + value bytes)."""
        headers = self.headers(topic, partition, offset)
        key, value = self.key, self.value
        key_size, value_size = len(key or b""), len(value or b"")
        room = DLQ_RECORD_LIMIT - _HEADER_ROOM
        if key_size + value_size <= room:
            return key, value, headers
        cut = []
        if key is not None and key_size > room // 2:
            key, cut = key[:room // 2], ["key"]
        if value is not None and len(key or b"") + value_size > room:
            value = value[:room - len(key or b"")]
            cut.append("value")
        headers += [("leadstage.truncated", ",".join(cut).encode()),
                    ("leadstage.original.size", str(key_size + value_size).encode())]
        return key, value, headers


def admit(key: bytes | None, value: bytes | None, now_ms: int,
          codec: AvroCodec | None = None) -> tuple[Admission, Any]:
    """(APPLY, record) | (IGNORE, record) for activities this reader does not know | (DEAD,
    DeadLetter)."""
    try:
        if value is None:
            raise DecodeError(Reason.UNDECODABLE, "the record has no value")
        size = len(value) + (len(key) if key else 0)
        if size > MAX_MESSAGE_BYTES:
            check_size(size)  # raises
        _, record = (codec or avro_codec()).decode(value, expect="LeadActivity")
        validate(record, now_ms)
        if key is None:
            raise InvalidEvent(Reason.MISSING_KEY, "the record has no key; key it by lead_id so "
                                                   "all of a lead's events reach one partition")
        if key != record["lead_id"].encode():
            raise InvalidEvent(Reason.KEY_MISMATCH,
                               "the record key is not the event's lead_id, so its lead's events "
                               "would be split over partitions")
    except (DecodeError, InvalidEvent) as exc:
        return DEAD, DeadLetter(exc.reason, type(exc).__name__, str(exc), key, value)
    except Exception as exc:  # defensive: nothing that arrives may stop the worker
        return DEAD, DeadLetter(Reason.INTERNAL, type(exc).__name__, str(exc)[:200], key, value)
    if route(record["activity"]) is UNKNOWN:
        return IGNORE, record
    return APPLY, record


__all__ = [
    "APPLY",
    "DEAD",
    "DLQ_RECORD_LIMIT",
    "IGNORE",
    "MAX_MESSAGE_BYTES",
    "Admission",
    "DeadLetter",
    "admit",
]
