"""Avro single-object encoding (DESIGN §3): `C3 01`, the 8-byte little-endian CRC-64-AVRO
fingerprint of the writer schema, then the Avro binary body.

Readers know every schema in `schemas/` (the current ones and `schemas/history/`) by fingerprint
and resolve an older or newer writer schema to the current reader schema.

Why fastavro here: decoding a LeadActivity takes about 8 µs with fastavro against 77 µs with the
`avro` package, and this is the worker's hot path. Bodies written with the current schema itself
(nearly all of them) go through a decoder generated from it (avro_decoder.py), about twice as
fast again, and records are written by an encoder generated the same way (avro_encoder.py);
fastavro resolves other writers' schemas. Why fingerprints come from fastavro's canonical form
too: `avro` 1.12 keeps `{"type": "long"}` for logical types in its Parsing Canonical Form,
where the specification (and Java's SchemaNormalization) write `"long"`, so its fingerprints would
not match those of a consumer that follows the specification.

Logical types are decoded as plain numbers (timestamp-millis as epoch milliseconds, date as days
since 1970-01-01): exact, cheap, and what the core computes with.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema

from streams.core.resources import schema_dir
from streams.wire.avro_decoder import compile_decoder
from streams.wire.avro_encoder import compile_encoder
from streams.wire.reasons import Reason

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
#: (data, position of the body) -> (record, position after it)
Reader = Callable[[bytes, int], tuple[Any, int]]


class DecodeError(ValueError):
    """Bytes that are not a single-object encoded record we can read."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _strip_logical(node: Any) -> Any:
    """The schema with logicalType annotations removed (same canonical form and fingerprint)."""
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def fingerprint(schema_json: dict[str, Any]) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, as the 8 little-endian bytes of the header."""
    canonical = fastavro.schema.to_parsing_canonical_form(schema_json)
    return bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


@dataclass(frozen=True)
class KnownSchema:
    name: str  # full name, e.g. leadstage.v1.LeadActivity
    source: Path
    json: dict[str, Any]
    fingerprint: bytes
    parsed: Any  # fastavro parsed schema (logical types stripped)


class AvroCodec:
    """Every schema in a folder, by fingerprint and by name; encoders and decoders per record."""

    def __init__(self, folder: Path | None = None) -> None:
        schema_folder = folder or schema_dir()
        self.current: dict[str, KnownSchema] = {}
        self.by_fingerprint: dict[bytes, KnownSchema] = {}
        paths = [*sorted(schema_folder.glob("history/*/*.avsc")),
                 *sorted(schema_folder.glob("*.avsc"))]
        for path in paths:
            known = self._load(path)
            self.by_fingerprint.setdefault(known.fingerprint, known)
            if path.parent == schema_folder:
                self.current[known.name.rsplit(".", 1)[-1]] = known
        # writer fingerprint -> (record type, its decoder resolved to the current schema of that
        # type), made on first use: one lookup per record read
        self._readers: dict[bytes, tuple[str, Reader]] = {}
        self._writers: dict[str, Callable[[dict[str, Any]], bytes]] = {}

    @staticmethod
    def _load(path: Path) -> KnownSchema:
        doc = json.loads(path.read_text())
        name = f"{doc.get('namespace', '')}.{doc['name']}".lstrip(".")
        parsed = fastavro.parse_schema(_strip_logical(doc))
        return KnownSchema(name, path, doc, fingerprint(doc), parsed)

    @staticmethod
    def _reader(writer: KnownSchema, current: KnownSchema) -> Reader:
        """The generated decoder for the current schema's own bodies, fastavro's resolution
        for any other writer's."""
        if writer.fingerprint == current.fingerprint:
            compiled = compile_decoder(current.json)
            if compiled is not None:
                return compiled
        writer_schema = writer.parsed
        reader_schema = None if writer.fingerprint == current.fingerprint else current.parsed

        def resolve(data: bytes, pos: int) -> tuple[Any, int]:
            body = io.BytesIO(data)
            body.seek(pos)
            return fastavro.schemaless_reader(body, writer_schema, reader_schema), body.tell()

        return resolve

    def encode(self, record_type: str, record: dict[str, Any]) -> bytes:
        encoder = self._writers.get(record_type)
        if encoder is None:
            encoder = self._writers[record_type] = self._writer(self.current[record_type])
        return encoder(record)

    @staticmethod
    def _writer(schema: KnownSchema) -> Callable[[dict[str, Any]], bytes]:
        """record -> single-object encoding: the generated encoder, or fastavro's."""
        header = MAGIC + schema.fingerprint
        compiled = compile_encoder(schema.json, header)
        if compiled is not None:
            return compiled
        parsed = schema.parsed

        def written(record: dict[str, Any]) -> bytes:
            out = io.BytesIO()
            out.write(header)
            fastavro.schemaless_writer(out, parsed, record)
            return out.getvalue()

        return written

    def decode(self, data: bytes, expect: str | None = None) -> tuple[str, dict[str, Any]]:
        """(record type, record) resolved to the current schema of that record type."""
        if type(data) is not bytes:  # a bytearray or memoryview: the decoders read bytes
            data = bytes(data)
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise DecodeError(Reason.UNDECODABLE,
                              "not Avro single-object encoded (no C3 01 header)")
        fp = data[2:HEADER_SIZE]
        known = self._readers.get(fp)
        if known is None:
            known = self._known_reader(fp)
        record_type, reader = known
        if expect is not None and record_type != expect:
            raise DecodeError(Reason.WRONG_RECORD_TYPE, f"a {record_type}, expected a {expect}")
        try:
            record, end = reader(data, HEADER_SIZE)
        except Exception as exc:  # corrupt bodies raise many types, in both decoders
            raise DecodeError(Reason.UNDECODABLE, f"corrupt Avro body: {type(exc).__name__}: "
                                                  f"{str(exc)[:200]}") from None
        if end != len(data):
            raise DecodeError(Reason.UNDECODABLE, "trailing bytes after the Avro body")
        if not isinstance(record, dict):
            raise DecodeError(Reason.WRONG_RECORD_TYPE, "the body is not a record")
        return record_type, record

    def _known_reader(self, fp: bytes) -> tuple[str, Reader]:
        """The record type and decoder of a writer fingerprint seen for the first time."""
        writer = self.by_fingerprint.get(fp)
        if writer is None:
            raise DecodeError(Reason.UNKNOWN_FINGERPRINT,
                              f"unknown writer schema fingerprint {fp.hex()}")
        record_type = writer.name.rsplit(".", 1)[-1]
        known = self._readers[fp] = (record_type,
                                     self._reader(writer, self.current[record_type]))
        return known


@cache
def avro_codec() -> AvroCodec:
    return AvroCodec()
