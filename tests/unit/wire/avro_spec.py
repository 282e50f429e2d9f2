"""An independent reading of the Avro specification, for tests: CRC-64-AVRO and the header."""

from __future__ import annotations

import io
import json
from pathlib import Path

import avro.io
import avro.schema
import fastavro.schema

EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def header_for(avsc: Path) -> bytes:
    canonical = fastavro.schema.to_parsing_canonical_form(json.loads(avsc.read_text()))
    return b"\xc3\x01" + crc64_avro(canonical.encode()).to_bytes(8, "little")


def read_with_avro_package(avsc: Path, data: bytes) -> dict:
    """Decode a single-object message with the `avro` package only (not the project's codec)."""
    assert data[:10] == header_for(avsc), "header is not C3 01 + the spec fingerprint"
    schema = avro.schema.parse(avsc.read_text())
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
