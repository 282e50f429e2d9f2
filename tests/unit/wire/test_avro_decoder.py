"""The generated Avro decoder against fastavro: the same record for every body fastavro writes,
and never a record for bytes fastavro refuses (it may refuse more: it is stricter)."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.resources import schema_dir
from streams.wire.avro import HEADER_SIZE, DecodeError, avro_codec
from streams.wire.avro_decoder import AvroBodyError, compile_decoder

ACTIVITY = json.loads((schema_dir() / "LeadActivity.avsc").read_text())
PARSED = avro_codec().current["LeadActivity"].parsed  # logical types stripped, as the worker reads
DECODE = compile_decoder(ACTIVITY)
FIELDS = {f["name"]: f for f in ACTIVITY["fields"]}

text = st.text(max_size=20)


def _symbols(name: str) -> list[str]:
    kind = FIELDS[name]["type"]
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    return kind["symbols"]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


activities = st.fixed_dictionaries({
    "event_id": text, "lead_id": text,
    "occurred_at": st.integers(-2**63, 2**63 - 1),
    "source": st.sampled_from(_symbols("source")),
    "activity": st.sampled_from(_symbols("activity")),
    "decision_by": optional(st.integers(-2**31, 2**31 - 1)),
    "amount": optional(st.floats(allow_nan=False)),
    "currency": optional(text), "team": optional(st.sampled_from(_symbols("team"))),
    "assessed_stage": optional(text), "reason": optional(text),
    "attributes": st.dictionaries(text, text, max_size=5),
})


def fastavro_body(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED, record)
    return out.getvalue()


def fastavro_read(body: bytes) -> tuple[Any, int]:
    stream = io.BytesIO(body)
    return fastavro.schemaless_reader(stream, PARSED, None), stream.tell()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_the_schema_compiles() -> None:
    assert DECODE is not None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(activities)
def test_every_body_fastavro_writes_decodes_to_the_same_record(record: dict[str, Any]) -> None:
    assert DECODE is not None
    body = fastavro_body(record)
    decoded, end = DECODE(body, 0)
    assert end == len(body)
    assert same(decoded, fastavro_read(body)[0])


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(activities, st.data())
def test_a_damaged_body_is_never_read_as_something_fastavro_refuses(record: dict[str, Any],
                                                                     data: st.DataObject) -> None:
    assert DECODE is not None
    body = bytearray(fastavro_body(record))
    how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = data.draw(st.integers(0, max(0, len(body) - 1)))
    if how == "flip":
        body[at] = data.draw(st.integers(0, 255))
    elif how == "cut":
        del body[at:]
    else:
        body[at:at] = data.draw(st.binary(min_size=1, max_size=12))
    damaged = bytes(body)
    try:
        mine = DECODE(damaged, 0)
    except (AvroBodyError, IndexError, UnicodeDecodeError):
        return  # refused: allowed whatever fastavro does (it is the more lenient)
    theirs = fastavro_read(damaged)  # raises if fastavro refuses what this decoder accepted
    assert same(mine[0], theirs[0]) and mine[1] == theirs[1]


@given(st.binary(max_size=64))
def test_random_bytes_are_refused_or_read_as_fastavro_reads_them(raw: bytes) -> None:
    assert DECODE is not None
    try:
        mine = DECODE(raw, 0)
    except (AvroBodyError, IndexError, UnicodeDecodeError):
        return
    theirs = fastavro_read(raw)
    assert same(mine[0], theirs[0]) and mine[1] == theirs[1]


@pytest.mark.parametrize(("body", "why"), [
    (b"\x03", "a length outside the body"),            # a negative length (-2)
    (b"\x14abc", "a length outside the body"),         # 10 bytes promised, 3 there
    (b"\x00\x00" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\x00\x00" + b"\xff" * 9 + b"\x7f", "beyond 64 bits"),
    (b"\x00\x00\x02\x08", "enum index out of range"),  # source 4 of 3
    (b"\x00\x00\x02\x01", "enum index out of range"),  # source -1 (fastavro reads "OTHER")
])
def test_what_fastavro_would_let_through_is_refused_with_a_reason(body: bytes, why: str) -> None:
    assert DECODE is not None
    with pytest.raises(AvroBodyError, match=why):
        DECODE(body, 0)


def test_the_registry_uses_it_and_names_a_corrupt_body() -> None:
    codec = avro_codec()
    record = {"event_id": "e-1", "lead_id": "L-1", "occurred_at": 1_700_000_000_000,
              "source": "WEB", "activity": "PAGE_VIEWED", "attributes": {"page": "/pricing"}}
    encoded = codec.encode("LeadActivity", record)
    _, decoded = codec.decode(encoded, expect="LeadActivity")
    assert decoded["attributes"] == {"page": "/pricing"} and decoded["amount"] is None
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(encoded + b"\x00", expect="LeadActivity")
    broken = bytearray(encoded)
    broken[HEADER_SIZE] = 0x7F  # event_id claims -64 bytes
    with pytest.raises(DecodeError, match="corrupt Avro body: AvroBodyError"):
        codec.decode(bytes(broken), expect="LeadActivity")


def test_indexes_written_in_more_bytes_than_needed_read_as_fastavro_reads_them() -> None:
    # source 1, activity 0 and six null union branches, each index as a two-byte varint: the
    # decoder's one-byte fast path for indexes must hand these to the general one
    body = b"\x00\x00\x02" + b"\x82\x00" + b"\x80\x00" + b"\x80\x00" * 6 + b"\x00"
    assert DECODE is not None
    mine = DECODE(body, 0)
    assert mine[0]["source"] == "CRM" and mine[0]["reason"] is None
    assert same(mine[0], fastavro_read(body)[0]) and mine[1] == len(body)
