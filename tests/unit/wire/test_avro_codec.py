"""Single-object encoding: exact bytes, independent readers and writers, schema evolution."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from streams.wire.avro import AvroCodec, DecodeError, avro_codec
from tests.paths import SCHEMA_DIR
from tests.unit.wire.avro_spec import crc64_avro, header_for, read_with_avro_package

UTC = dt.UTC
ACTIVITY = {
    "event_id": "web-1", "lead_id": "L-1", "occurred_at": 1_795_000_000_123, "source": "WEB",
    "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": 20_878, "amount": 1500.5,
    "currency": "EUR", "team": None, "assessed_stage": None, "reason": None,
    "attributes": {"utm": "x"},
}
OCCURRED = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ACTIVITY["occurred_at"])
CHANGED = {
    "event_id": "L-1:3", "lead_id": "L-1", "sequence": 3, "previous_stage": "warm",
    "stage": "hot", "changed_at": 1_795_000_000_000, "cause": "EVENT", "cause_event_id": "web-1",
    "definitions_version": 1, "reason": "hot: deciding_soon", "facts": {"contacts": "1"},
}
STAGE = {"lead_id": "L-1", "stage": "hot", "since": 1_795_000_000_000, "sequence": 3,
         "definitions_version": 1}


def test_crc64_avro_matches_the_specification_test_vector():
    # The Avro specification's fingerprint of the schema "null" is -5060514587924413046 as a
    # signed Java long (0xB9C1..), stored little-endian in the single-object header.
    assert crc64_avro(b'"null"').to_bytes(8, "little").hex() == "8a8f25cce724dd63"


@pytest.mark.parametrize(("name", "record"), [("LeadActivity", ACTIVITY),
                                              ("LeadStageChanged", CHANGED), ("LeadStage", STAGE)])
def test_round_trip_and_exact_header(name, record):
    data = avro_codec().encode(name, record)
    assert data[:10] == header_for(SCHEMA_DIR / f"{name}.avsc")
    assert avro_codec().decode(data) == (name, record)


def test_a_spec_only_consumer_reads_what_we_write():
    data = avro_codec().encode("LeadActivity", ACTIVITY)
    decoded = read_with_avro_package(SCHEMA_DIR / "LeadActivity.avsc", data)
    assert decoded["occurred_at"] == OCCURRED
    assert decoded["decision_by"] == dt.date(2027, 3, 1)
    assert {k: v for k, v in decoded.items() if k not in ("occurred_at", "decision_by")} == {
        k: v for k, v in ACTIVITY.items() if k not in ("occurred_at", "decision_by")}


def test_we_read_what_an_independent_writer_wrote():
    schema = json.loads((SCHEMA_DIR / "LeadActivity.avsc").read_text())
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), {
        **ACTIVITY, "occurred_at": OCCURRED,
        "decision_by": dt.date(2027, 3, 1)})
    data = header_for(SCHEMA_DIR / "LeadActivity.avsc") + body.getvalue()
    assert avro_codec().decode(data) == ("LeadActivity", ACTIVITY)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "undecodable"),
    (b"{\"json\": true}", "undecodable"),
    (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_fingerprint"),
])
def test_bad_bytes(data, reason):
    with pytest.raises(DecodeError) as caught:
        avro_codec().decode(data)
    assert caught.value.reason == reason


def test_truncated_body_and_trailing_bytes_are_rejected():
    data = avro_codec().encode("LeadActivity", ACTIVITY)
    with pytest.raises(DecodeError, match="corrupt"):
        avro_codec().decode(data[:-5])
    with pytest.raises(DecodeError, match="trailing"):
        avro_codec().decode(data + b"\x00")


def _evolve(tmp_path: Path, mutate) -> Path:
    """A schema folder where the current LeadActivity is `mutate`d and v1 is kept in history."""
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, folder)
    current = folder / "LeadActivity.avsc"
    doc = json.loads(current.read_text())
    mutate(doc)
    current.write_text(json.dumps(doc))
    (folder / "history" / "LeadActivity" / "v2.avsc").write_text(json.dumps(doc))
    return folder


def _add_field_and_symbol(doc: dict) -> None:
    doc["fields"].append({"name": "campaign", "type": ["null", "string"], "default": None})
    activity = next(f for f in doc["fields"] if f["name"] == "activity")
    activity["type"]["symbols"].insert(-1, "TRIAL_STARTED")


def test_older_writer_is_resolved_to_the_newer_reader(tmp_path):
    old_bytes = avro_codec().encode("LeadActivity", ACTIVITY)
    newer = AvroCodec(_evolve(tmp_path, _add_field_and_symbol))
    _, record = newer.decode(old_bytes)
    assert record == {**ACTIVITY, "campaign": None}


def test_newer_writer_is_resolved_to_the_older_reader(tmp_path):
    newer = AvroCodec(_evolve(tmp_path, _add_field_and_symbol))
    data = newer.encode("LeadActivity", {**ACTIVITY, "activity": "TRIAL_STARTED",
                                         "campaign": "spring"})
    # The current reader knows v2 only once it is in schemas/history; simulate a deployed reader
    # that has the new history file but the old current schema.
    folder = tmp_path / "reader"
    shutil.copytree(SCHEMA_DIR, folder)
    shutil.copy(tmp_path / "schemas" / "history" / "LeadActivity" / "v2.avsc",
                folder / "history" / "LeadActivity" / "v2.avsc")
    _, record = AvroCodec(folder).decode(data)
    assert record["activity"] == "UNKNOWN"  # the enum default of a symbol this reader lacks
    assert "campaign" not in record


def compatible(reader: dict, writer: dict) -> bool:
    checker = ReaderWriterCompatibilityChecker()
    result = checker.get_compatibility(avro.schema.parse(json.dumps(reader)),
                                       avro.schema.parse(json.dumps(writer)))
    return result.compatibility is SchemaCompatibilityType.compatible


@pytest.mark.parametrize("name", ["LeadActivity", "LeadStageChanged", "LeadStage"])
def test_every_schema_is_backward_and_forward_compatible_with_its_previous_version(name):
    current = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    versions = sorted((SCHEMA_DIR / "history" / name).glob("v*.avsc"),
                      key=lambda p: int(p.stem[1:]))
    assert versions, f"{name} has no released version in schemas/history"
    assert json.loads(versions[-1].read_text()) == current, "release the current schema"
    previous = json.loads(versions[-2].read_text()) if len(versions) > 1 else current
    assert compatible(current, previous), "backward: new readers must read old data"
    assert compatible(previous, current), "forward: old readers must read new data"


def test_the_compatibility_check_catches_a_breaking_change():
    current = json.loads((SCHEMA_DIR / "LeadActivity.avsc").read_text())
    broken = json.loads(json.dumps(current))
    broken["fields"].append({"name": "region", "type": "string"})  # no default
    assert not compatible(broken, current)  # new reader cannot read old data
    renamed = json.loads(json.dumps(current))
    renamed["fields"][1]["type"] = "long"  # lead_id changes type
    assert not compatible(renamed, current) and not compatible(current, renamed)
