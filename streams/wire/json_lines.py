"""The JSON-lines form of LeadActivity (DESIGN §3) and Python values, normalised to the record
the Avro codec writes: occurred_at in epoch ms, decision_by in days since 1970-01-01, omitted
optional fields null."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from streams.core.calendar import day_number, timestamp_ms
from streams.core.catalog import load_catalog
from streams.wire.avro import AvroCodec
from streams.wire.reasons import Reason
from streams.wire.validation import InvalidEvent, check_size, validate

SOURCES = ("WEB", "CRM", "OTHER")
TEAMS = ("MARKETING", "SALES")
OPTIONAL = ("decision_by", "amount", "currency", "team", "assessed_stage", "reason")
FIELDS = frozenset({"event_id", "lead_id", "occurred_at", "source", "activity", "attributes",
                    *OPTIONAL})


def _timestamp(value: object) -> int:
    if isinstance(value, dt.datetime):
        return timestamp_ms(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(Reason.BAD_FIELD, f"occurred_at {value!r} is not ISO-8601") from None
        if moment.tzinfo is None:
            raise InvalidEvent(Reason.BAD_FIELD, f"occurred_at {value!r} has no UTC offset")
        return timestamp_ms(moment)
    raise InvalidEvent(Reason.BAD_FIELD, "occurred_at must be ISO-8601 with an offset or epoch ms")


def _date(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise InvalidEvent(Reason.BAD_FIELD, "decision_by must be a date, not a timestamp")
    if isinstance(value, dt.date):
        return day_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # already days since 1970-01-01
    if isinstance(value, str):
        try:
            return day_number(dt.date.fromisoformat(value))
        except ValueError:
            pass
    raise InvalidEvent(Reason.BAD_FIELD, f"decision_by {value!r} is not a date YYYY-MM-DD")


def normalize(event: Mapping[str, Any]) -> dict[str, Any]:
    """A LeadActivity record from JSON or Python values; InvalidEvent says what is wrong."""
    unknown = sorted(set(event) - FIELDS)
    if unknown:
        raise InvalidEvent(Reason.UNKNOWN_FIELD, f"unknown field(s): {', '.join(unknown)}")
    for name in ("event_id", "lead_id", "occurred_at", "activity"):
        if event.get(name) is None:
            raise InvalidEvent(Reason.MISSING_FIELD, f"missing field {name}")
    activity = event["activity"]
    if activity not in load_catalog().activities or activity == "UNKNOWN":
        raise InvalidEvent(Reason.UNKNOWN_ACTIVITY, f"unknown activity {activity!r}")
    source = event.get("source") or "OTHER"
    if source not in SOURCES:
        raise InvalidEvent(Reason.BAD_FIELD, f"source must be one of {', '.join(SOURCES)}")
    team = event.get("team")
    if team is not None and team not in TEAMS:
        raise InvalidEvent(Reason.BAD_FIELD, f"team must be one of {', '.join(TEAMS)}")
    amount = event.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        raise InvalidEvent(Reason.BAD_FIELD, "amount must be a number")
    attributes = event.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
        raise InvalidEvent(Reason.BAD_FIELD, "attributes must map text to text")
    for name in ("event_id", "lead_id", "currency", "assessed_stage", "reason"):
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidEvent(Reason.BAD_FIELD, f"{name} must be text")
    return {
        "event_id": event["event_id"],
        "lead_id": event["lead_id"],
        "occurred_at": _timestamp(event["occurred_at"]),
        "source": source,
        "activity": activity,
        "decision_by": _date(event.get("decision_by")),
        "amount": None if amount is None else float(amount),
        "currency": event.get("currency"),
        "team": team,
        "assessed_stage": event.get("assessed_stage"),
        "reason": event.get("reason"),
        "attributes": dict(attributes),
    }


def parse_line(line: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(Reason.INVALID_JSON, f"invalid JSON: {exc.msg} at column {exc.colno}") \
            from None
    if not isinstance(event, dict):
        raise InvalidEvent(Reason.INVALID_JSON, "each line must be one JSON object")
    return normalize(event)


def to_kafka_record(record: dict[str, Any], codec: AvroCodec, now_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of the Kafka record for a normalised event, as every producer sends it:
    validated, Avro single-object encoded, keyed by lead_id; InvalidEvent if it breaks a rule."""
    validate(record, now_ms)
    value = codec.encode("LeadActivity", record)
    key = record["lead_id"].encode()
    check_size(len(key) + len(value))
    return key, value
