"""Validation rules, the JSON-lines form, and the input gate (garbage never raises)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.activity_json import normalize, parse_line
from streams.activity_validation import MAX_MESSAGE_BYTES, InvalidEvent, validate
from streams.avro_codec import registry
from streams.definitions.calendar import parse_date
from streams.input_gate import APPLY, DEAD, IGNORE, admit

NOW = int(time.time() * 1000)
GOOD = {"event_id": "e1", "lead_id": "L1", "occurred_at": NOW - 1000, "source": "CRM",
        "activity": "CONTACTED"}


def record(**changes: object) -> dict:
    return {**normalize(GOOD), **changes}


@pytest.mark.parametrize(("changes", "reason"), [
    ({"event_id": ""}, "missing_id"),
    ({"lead_id": "   "}, "missing_id"),
    ({"lead_id": "x" * 300}, "invalid_id"),
    ({"lead_id": "jane.doe@example.com"}, "pii_in_id"),
    ({"occurred_at": parse_date("1999-12-31") * 86_400_000}, "occurred_at_out_of_range"),
    ({"occurred_at": NOW + 25 * 3_600_000}, "occurred_at_out_of_range"),
    ({"activity": "DECISION_TIMELINE_PROVIDED"}, "missing_decision_by"),
    ({"activity": "STAGE_ASSESSED", "team": "SALES"}, "missing_assessment"),
    ({"attributes": {str(i): "v" for i in range(101)}}, "too_many_attributes"),
])
def test_each_validation_rule(changes, reason):
    with pytest.raises(InvalidEvent) as caught:
        validate(record(**changes), NOW)
    assert caught.value.reason == reason


def test_valid_events_pass_including_one_day_ahead_and_the_year_2000():
    validate(record(), NOW)
    validate(record(occurred_at=NOW + 23 * 3_600_000), NOW)
    validate(record(occurred_at=parse_date("2000-01-01") * 86_400_000), NOW)
    validate(record(activity="DECISION_TIMELINE_PROVIDED", decision_by=20_000), NOW)


@pytest.mark.parametrize(("text", "occurred_at"), [
    ('"2026-11-26T10:15:00+00:00"', parse_date("2026-11-26") * 86_400_000 + 36_900_000),
    ('"2026-11-26T11:15:00+01:00"', parse_date("2026-11-26") * 86_400_000 + 36_900_000),
    ('"2026-11-26T10:15:00Z"', parse_date("2026-11-26") * 86_400_000 + 36_900_000),
    ("1795000000123", 1_795_000_000_123),
])
def test_json_lines_timestamps(text, occurred_at):
    line = ('{"event_id": "e", "lead_id": "L", "activity": "CONTACTED", "occurred_at": '
            + text + ', "decision_by": null}')
    event = parse_line(line)
    assert event["occurred_at"] == occurred_at
    assert event["source"] == "OTHER" and event["attributes"] == {} and event["amount"] is None


@pytest.mark.parametrize(("line", "words"), [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"event_id": "e", "lead_id": "L", "occurred_at": 1}', "missing field activity"),
    ('{"event_id": "e", "lead_id": "L", "occurred_at": 1, "activity": "DANCED"}',
     "unknown activity"),
    ('{"event_id": "e", "lead_id": "L", "occurred_at": "2026-11-26T10:00:00", '
     '"activity": "CONTACTED"}', "no UTC offset"),
    ('{"event_id": "e", "lead_id": "L", "occurred_at": 1, "activity": "CONTACTED", '
     '"email": "x"}', "unknown field(s): email"),
    ('{"event_id": "e", "lead_id": "L", "occurred_at": 1, "activity": '
     '"DECISION_TIMELINE_PROVIDED", "decision_by": "next spring"}', "not a date"),
])
def test_json_lines_errors_say_what_is_wrong(line, words):
    with pytest.raises(InvalidEvent, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_line(line)


def encoded(**changes: object) -> bytes:
    return registry().encode("LeadActivity", record(**changes))


def test_gate_applies_valid_records():
    outcome, rec = admit(b"L1", encoded(), NOW)
    assert outcome == APPLY and rec["lead_id"] == "L1"


def test_gate_ignores_activities_this_reader_does_not_know():
    outcome, rec = admit(b"L1", encoded(activity="UNKNOWN"), NOW)
    assert outcome == IGNORE and rec["activity"] == "UNKNOWN"


@pytest.mark.parametrize(("key", "value", "reason"), [
    (b"L1", b"\x00\x01garbage", "undecodable"),
    (b"L1", None, "undecodable"),
    (b"L1", b"\xc3\x01" + bytes(8) + b"\x02\x02", "unknown_fingerprint"),
    (b"L2", None, "undecodable"),
    (b"L2", "valid", "key_mismatch"),
    (b"L1", "truncated", "undecodable"),
    (b"L1", "oversized", "oversized"),
    (b"L1", "future", "occurred_at_out_of_range"),
    (b"L1", "stagechange", "wrong_record_type"),
])
def test_gate_dead_letters(key, value, reason):
    if value == "valid":
        value = encoded()
    elif value == "truncated":
        value = encoded()[:-4]
    elif value == "oversized":
        value = encoded(attributes={"blob": "x" * MAX_MESSAGE_BYTES})
    elif value == "future":
        value = encoded(occurred_at=NOW + 3 * 86_400_000)
    elif value == "stagechange":
        value = registry().encode("LeadStage", {"lead_id": "L1", "stage": "hot", "since": 1,
                                                "sequence": 1, "definitions_version": 1})
    outcome, dead = admit(key, value, NOW)
    assert outcome == DEAD and dead.reason == reason
    assert dead.key == key and dead.value == value  # the original bytes, untouched
    headers = dict(dead.headers("lead-activity", 3, 1234))
    assert headers["leadstage.error.reason"] == reason.encode()
    assert headers["leadstage.original.topic"] == b"lead-activity"
    assert headers["leadstage.original.partition"] == b"3"
    assert headers["leadstage.original.offset"] == b"1234"
    assert headers["leadstage.error.message"]
    assert headers["leadstage.error.class"] in (b"DecodeError", b"InvalidEvent")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=200)), st.binary(max_size=300))
def test_gate_never_raises_on_random_bytes(key, value):
    outcome, _ = admit(key, value, NOW)
    assert outcome == DEAD


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_gate_never_raises_on_corrupted_valid_records(data):
    value = bytearray(encoded(attributes={"a": "b"}))
    for _ in range(data.draw(st.integers(1, 5))):
        value[data.draw(st.integers(0, len(value) - 1))] = data.draw(st.integers(0, 255))
    outcome, _ = admit(b"L1", bytes(value), NOW)
    assert outcome in (APPLY, IGNORE, DEAD)
