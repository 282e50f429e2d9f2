"""The produce request the batch sender sends, and its response, in one pass each.

aiokafka builds a request as a struct of its schema and encodes it by walking that schema in
Python, and decodes the response the same way, for every flush; a worker at a steady rate
flushes twice per fetch, a hundred or more fetches a second, so that Python was a share of each
cycle's CPU (bench/README.md, "The produce request and response in one pass"). Here the same
bytes are written with a few `struct.pack` calls, and the response's fields read with
`unpack_from`.

Only ProduceRequest v7 (the version aiokafka itself picks from every broker since Kafka 2.1, and
the newest it knows) is written this way; `_Produce.prepare` leaves any other to aiokafka. The
header, the correlation and the connection stay aiokafka's: `_ProduceV7` is its v7 struct class
with its own `encode` and response type. tests/unit/adapters/test_produce_wire.py checks both
against aiokafka's encoding.
"""

from __future__ import annotations

from io import BytesIO
from struct import Struct
from typing import Any

from aiokafka.protocol.produce import ProduceRequest, ProduceRequest_v7

#: (topic, [(partition, records)]) as aiokafka's ProduceRequest takes them
Topics = list[tuple[str, list[tuple[int, Any]]]]

_I16 = Struct(">h")
_I32 = Struct(">i")
#: a null transactional id, then acks and the timeout
_HEAD = Struct(">hhi")
#: a partition and the size of its records
_PARTITION = Struct(">ii")
#: a partition's answer: partition, error code, base offset, log append time, log start offset
_ANSWER = Struct(">ihqqq")
_ANSWER_SIZE = _ANSWER.size


class ProduceResponse:
    """A ProduceResponse of v5 to v7 (one layout): `topics` as aiokafka's decoded struct gives
    them, [(topic, [(partition, error_code, offset, timestamp, log_start_offset)])]."""

    __slots__ = ("throttle_time_ms", "topics")

    def __init__(self, topics: list[tuple[str, list[tuple[int, int, int, int, int]]]],
                 throttle_time_ms: int) -> None:
        self.topics = topics
        self.throttle_time_ms = throttle_time_ms

    @classmethod
    def decode(cls, data: BytesIO | bytes) -> ProduceResponse:
        """The response body (after its header, where aiokafka's connection leaves the
        buffer). Raises struct.error or UnicodeDecodeError for a body that does not parse, as
        aiokafka's decoder raises for one."""
        raw = data.read() if isinstance(data, BytesIO) else data
        answer = _ANSWER.unpack_from
        (count,), pos = _I32.unpack_from(raw, 0), 4
        topics = []
        for _ in range(count):
            (size,) = _I16.unpack_from(raw, pos)
            pos += 2
            if size < 0 or pos + size > len(raw):
                raise ValueError("a topic name outside the response")
            topic = raw[pos:pos + size].decode()
            pos += size
            (partitions,) = _I32.unpack_from(raw, pos)
            pos += 4
            answers = []
            for _ in range(partitions):
                answers.append(answer(raw, pos))
                pos += _ANSWER_SIZE
            topics.append((topic, answers))
        (throttle,) = _I32.unpack_from(raw, pos)
        return cls(topics, throttle)

    def __repr__(self) -> str:
        return f"ProduceResponse(topics={self.topics!r}, throttle_time_ms={self.throttle_time_ms})"


class _ProduceV7(ProduceRequest_v7):  # type: ignore[misc]  # aiokafka is untyped here
    """aiokafka's v7 struct (its header, API key and version), encoded here."""

    RESPONSE_TYPE = ProduceResponse

    def __init__(self, acks: int, timeout_ms: int, topics: Topics) -> None:
        # not the struct's __init__: its fields are the ones encode() writes
        self._acks, self._timeout_ms, self._topics = acks, timeout_ms, topics

    def encode(self) -> bytes:
        """ProduceRequest v3 to v7's body (one layout): no transactional id."""
        topics = self._topics
        parts = [_HEAD.pack(-1, self._acks, self._timeout_ms), _I32.pack(len(topics))]
        for topic, partitions in topics:
            name = topic.encode()
            parts.append(_I16.pack(len(name)))
            parts.append(name)
            parts.append(_I32.pack(len(partitions)))
            for partition, records in partitions:
                parts.append(_PARTITION.pack(partition, len(records)))
                parts.append(records)
        return b"".join(parts)

    def __repr__(self) -> str:
        return (f"ProduceRequest_v7(acks={self._acks}, timeout={self._timeout_ms}, "
                f"partitions={sum(len(p) for _, p in self._topics)})")


class Produce(ProduceRequest):  # type: ignore[misc]
    """aiokafka's ProduceRequest without a transactional id, sent as `_ProduceV7` where the
    broker takes v7; any other version is aiokafka's to build (or refuse)."""

    def __init__(self, acks: int, timeout_ms: int, topics: Topics) -> None:
        super().__init__(None, acks, timeout_ms, topics)

    def prepare(self, versions: dict[int, tuple[int, int]]) -> Any:
        span = versions.get(self.API_KEY)
        if span is not None and span[0] <= _ProduceV7.API_VERSION <= span[1]:
            return _ProduceV7(self._required_acks, self._timeout, self._topics)
        return super().prepare(versions)


__all__ = ["Produce", "ProduceResponse", "Topics"]
