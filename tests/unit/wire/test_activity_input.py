"""Validation rules, the JSON-lines form, and the input gate (garbage never raises)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.calendar import parse_date
from streams.wire.avro import avro_codec
from streams.wire.gate import APPLY, DEAD, IGNORE, admit
from streams.wire.json_lines import normalize, parse_line
from streams.wire.validation import MAX_MESSAGE_BYTES, InvalidEvent, validate

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
    # The inputs that once stopped a worker, and their neighbours.
    ({"activity": "DEAL_WON", "amount": -1.0}, "invalid_amount"),
    ({"activity": "DEAL_WON", "amount": float("-inf")}, "invalid_amount"),
    ({"activity": "DEAL_WON", "amount": float("inf")}, "invalid_amount"),
    ({"activity": "DEAL_WON", "amount": float("nan")}, "invalid_amount"),
    ({"activity": "DEAL_WON", "amount": 2e15}, "invalid_amount"),
    ({"activity": "DECISION_TIMELINE_PROVIDED", "decision_by": 3_000_000}, "date_out_of_range"),
    ({"activity": "DECISION_TIMELINE_PROVIDED", "decision_by": -1}, "date_out_of_range"),
    ({"activity": "DECISION_TIMELINE_PROVIDED", "decision_by": parse_date("2200-01-01")},
     "date_out_of_range"),
    ({"currency": "E" * 600_000}, "invalid_currency"),
    ({"currency": "eur"}, "invalid_currency"),
    ({"lead_id": "jane\uff20example.com"}, "pii_in_id"),  # full-width commercial at
    ({"lead_id": "jane\ufe6bexample.com"}, "pii_in_id"),  # small commercial at
    ({"lead_id": "jane%40example.com"}, "pii_in_id"),
    ({"lead_id": "jane\uff05\uff14\uff10example.com"}, "pii_in_id"),  # full-width "%40"
    ({"lead_id": "\u00e9" * 129}, "invalid_id"),  # 129 characters, 258 bytes
    ({"event_id": "x" * 257}, "invalid_id"),
    ({"event_id": "a\ud800b"}, "invalid_id"),  # a lone surrogate: not text
    ({"activity": "STAGE_ASSESSED", "team": "SALES", "assessed_stage": "h" * 65}, "too_long"),
    ({"activity": "SALES_REJECTED", "reason": "r" * 1025}, "too_long"),
    ({"activity": "SALES_REJECTED", "reason": "bad \udcff byte"}, "invalid_text"),
    ({"attributes": {"k" * 129: "v"}}, "too_long"),
    ({"attributes": {"": "v"}}, "too_long"),
    ({"attributes": {"k": "v" * 1025}}, "too_long"),
    # attributes past the ASCII fast path: sizes in bytes, not characters, and not text
    ({"attributes": {"k": "\u00e9" * 513}}, "too_long"),  # 513 characters, 1026 bytes
    ({"attributes": {"\u00e9" * 65: "v"}}, "too_long"),  # 65 characters, 130 bytes
    ({"attributes": {"k": "bad \udcff byte"}}, "invalid_text"),
    ({"attributes": {"bad \ud800": "v"}}, "invalid_text"),
    ({"attributes": {"k": 5}}, "bad_field"),
    ({"attributes": {"k": b"v"}}, "bad_field"),
])
def test_each_validation_rule(changes, reason):
    with pytest.raises(InvalidEvent) as caught:
        validate(record(**changes), NOW)
    assert caught.value.reason == reason


def test_valid_events_pass_including_one_day_ahead_and_the_year_2000():
    validate(record(), NOW)
    validate(record(activity="DEAL_WON", amount=0.0, currency="EUR"), NOW)
    validate(record(activity="DEAL_WON", amount=1e15), NOW)
    validate(record(lead_id="\u00e9" * 128, event_id="e" * 256), NOW)  # 256 bytes each
    validate(record(activity="DECISION_TIMELINE_PROVIDED", decision_by=parse_date("2199-12-31")),
             NOW)
    validate(record(attributes={"k" * 128: "v" * 1024}), NOW)
    validate(record(attributes={"\u00e9" * 64: "\u00e9" * 512, "k": None}), NOW)  # at the limits
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
    return avro_codec().encode("LeadActivity", record(**changes))


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
    (None, "valid", "missing_key"),
    (b"L1", b"\xc3\x01" + b"\x00" * 8 + b"\x04\xff\xfe", "unknown_fingerprint"),
    (b"L1", "invalid_utf8", "undecodable"),
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
    elif value == "invalid_utf8":  # lead_id "\xff\xfe": rejected, never replaced
        good = encoded(lead_id="ab")
        value = good.replace(b"\x04ab", b"\x04\xff\xfe", 1)
        assert value != good
    elif value == "stagechange":
        value = avro_codec().encode("LeadStage", {"lead_id": "L1", "stage": "hot", "since": 1,
                                                  "sequence": 1, "definitions_version": 1})
    outcome, dead = admit(key, value, NOW)
    assert outcome == DEAD and dead.reason == reason, dead
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


def test_dead_letters_are_cut_to_fit_and_say_so():
    from streams.wire.gate import DLQ_RECORD_LIMIT, DeadLetter

    for key_size, value_size in [(10, 1_048_400), (900_000, 900_000), (0, DLQ_RECORD_LIMIT)]:
        dead = DeadLetter("oversized", "InvalidEvent", "x" * 5000, b"k" * key_size,
                          b"v" * value_size)
        key, value, headers = dead.record("t" * 300, 7, 123456789)
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        assert size <= DLQ_RECORD_LIMIT
        h = dict(headers)
        assert h["leadstage.original.size"] == str(key_size + value_size).encode()
        assert h["leadstage.original.offset"] == b"123456789"
        assert h["leadstage.truncated"] in (b"value", b"key,value")
    small = DeadLetter("undecodable", "DecodeError", "m", b"k", b"v").record("t", 0, 1)
    assert small[:2] == (b"k", b"v") and "leadstage.truncated" not in dict(small[2])


@pytest.mark.parametrize("text", ["amount", "NaN", "-Infinity", "-5"])
def test_json_lines_refuse_amounts_no_counter_can_take(text):
    value = {"amount": '"x"', "NaN": "NaN", "-Infinity": "-Infinity", "-5": "-5"}[text]
    line = ('{"event_id": "e", "lead_id": "L", "activity": "DEAL_WON", '
            '"occurred_at": "2026-11-26T10:00:00Z", "amount": ' + value + '}')
    with pytest.raises(InvalidEvent) as caught:
        validate(parse_line(line), NOW)
    assert caught.value.reason in ("bad_field", "invalid_amount")
