"""Raw Kafka record -> valid LeadActivity, ignored record, or dead letter. Never raises.

The worker calls `admit` for every record it consumes; dead letters keep the original key and
bytes and name the error, the original topic, partition and offset in their headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.activity_validation import MAX_MESSAGE_BYTES, InvalidEvent, check_size, validate
from streams.avro_codec import DecodeError, Registry, registry

APPLY, IGNORE, DEAD = "apply", "ignore", "dead"
MAX_HEADER_MESSAGE = 500


@dataclass(slots=True)
class DeadLetter:
    reason: str
    error_class: str
    message: str
    key: bytes | None
    value: bytes | None

    def headers(self, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        return [
            ("leadstage.error.reason", self.reason.encode()),
            ("leadstage.error.class", self.error_class.encode()),
            ("leadstage.error.message", self.message[:MAX_HEADER_MESSAGE].encode()),
            ("leadstage.original.topic", topic.encode()),
            ("leadstage.original.partition", str(partition).encode()),
            ("leadstage.original.offset", str(offset).encode()),
        ]


def admit(key: bytes | None, value: bytes | None, now_ms: int,
          codec: Registry | None = None) -> tuple[str, Any]:
    """(APPLY, record) | (IGNORE, record) for activities this reader does not know | (DEAD,
    DeadLetter)."""
    try:
        if value is None:
            raise DecodeError("undecodable", "the record has no value")
        check_size(len(value) + (len(key) if key else 0))
        _, record = (codec or registry()).decode(value, expect="LeadActivity")
        validate(record, now_ms)
        if key is not None and key != record["lead_id"].encode():
            raise InvalidEvent("key_mismatch", "the record key is not the event's lead_id, so "
                                               "its lead's events would be split over partitions")
    except (DecodeError, InvalidEvent) as exc:
        return DEAD, DeadLetter(exc.reason, type(exc).__name__, str(exc), key, value)
    except Exception as exc:  # defensive: nothing that arrives may stop the worker
        return DEAD, DeadLetter("internal", type(exc).__name__, str(exc)[:200], key, value)
    if record["activity"] == "UNKNOWN":
        return IGNORE, record
    return APPLY, record


__all__ = ["APPLY", "DEAD", "IGNORE", "MAX_MESSAGE_BYTES", "DeadLetter", "admit"]
